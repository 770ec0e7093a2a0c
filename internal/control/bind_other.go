//go:build !unix

package control

import (
	"fmt"
	"log/slog"
	"net"
)

// bind takes path once no live master answers there. Without Unix file
// modes there is nothing to tighten: the directory's ACL guards the socket.
func bind(path string, log *slog.Logger) (*net.UnixListener, error) {
	if err := clearStale(path, log); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false)
	return ln, nil
}

// isRefused: Windows reports a socket file nobody listens on with its own
// error codes; any failure to connect means nobody answers.
func isRefused(err error) bool { return err != nil }
