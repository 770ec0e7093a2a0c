//go:build unix

package proc

import (
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Supported reports whether brood's process model works on this platform.
const Supported = true

// Socketpair returns a connected pair of Unix stream sockets: one end for
// this process, one to hand to a child. Both are close-on-exec; exec.Cmd's
// ExtraFiles clears that flag for the child's copy only.
func Socketpair(name string) (net.Conn, *os.File, error) {
	mine, theirs, err := SocketpairFiles(name)
	if err != nil {
		return nil, nil, err
	}
	defer mine.Close()
	c, err := net.FileConn(mine)
	if err != nil {
		theirs.Close()
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return c, theirs, nil
}

// SocketpairFiles returns both ends of a new pair of Unix stream sockets as
// files, close-on-exec, with room for bursts: for the master's channel to
// a child and for the direct channels between the agent and the workers.
func SocketpairFiles(name string) (*os.File, *os.File, error) {
	// ForkLock keeps a concurrent fork from inheriting the pair before it
	// is marked close-on-exec (not every Unix has SOCK_CLOEXEC).
	syscall.ForkLock.RLock()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err == nil {
		unix.CloseOnExec(fds[0])
		unix.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	// Room for bursts of small messages: the default buffer fills in
	// microseconds at a million messages a second.
	for _, fd := range fds {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20)
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	}
	return os.NewFile(uintptr(fds[0]), name), os.NewFile(uintptr(fds[1]), name), nil
}

// IsSocket reports whether fd is an open socket of the given type
// (unix.SOCK_STREAM for the master channel).
func IsSocket(fd, typ int) bool {
	t, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	return err == nil && t == typ
}

// StreamSocket is the socket type of the master channel.
const StreamSocket = unix.SOCK_STREAM
