//go:build unix

package control

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
)

// bind creates a listening socket at path that only we can connect to, and
// only if no live master answers there.
//
// bind(2) gives a socket file the mode 0777 minus the umask, and changing
// the umask would race with every other goroutine creating files. So the
// socket is bound under a temporary name, made 0600, and then linked to its
// real name: link(2), unlike rename(2), fails when the name is taken, so two
// masters starting at once cannot both win.
func bind(path string, log *slog.Logger) (*net.UnixListener, error) {
	tmp := tempPath(path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false) // the file that matters is path; Close removes it
	defer os.Remove(tmp)
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	for attempt := 0; ; attempt++ {
		err := os.Link(tmp, path)
		if err == nil {
			return ln, nil
		}
		if !errors.Is(err, fs.ErrExist) || attempt == 2 {
			ln.Close()
			return nil, fmt.Errorf("control socket %s: %w", path, err)
		}
		if err := clearStale(path, log); err != nil {
			ln.Close()
			return nil, err
		}
	}
}

// tempPath is a hidden name in path's directory no longer than path's own
// name (when that is at least 5 bytes), so a path that passes checkLen can
// also be bound under its temporary name.
func tempPath(path string) string {
	dir, base := filepath.Split(path)
	n := min(max(len(base), 5), 14) - 1
	return filepath.Join(dir, "."+rand.Text()[:n])
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
