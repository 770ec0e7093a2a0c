//go:build !unix

package proc

import (
	"errors"
	"net"
	"os"
	"runtime"
)

// Supported reports whether brood's process model works on this platform.
const Supported = false

var errUnsupported = errors.New("brood needs a Unix system (Linux, macOS or a BSD): " + runtime.GOOS + " cannot pass sockets to child processes")

// Socketpair is unavailable on this platform.
func Socketpair(string) (net.Conn, *os.File, error) { return nil, nil, errUnsupported }

// SocketpairFiles is unavailable on this platform.
func SocketpairFiles(string) (*os.File, *os.File, error) { return nil, nil, errUnsupported }

// IsSocket is always false on this platform.
func IsSocket(int, int) bool { return false }

// StreamSocket is the socket type of the master channel.
const StreamSocket = 1
