//go:build unix

package reuseport

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// fileOf returns a duplicate descriptor of ln's socket whose Fd method
// leaves the socket's flags alone.
//
// ln.File would do, except that the File it returns puts the descriptor in
// blocking mode whenever its Fd method is called, and os/exec calls Fd on
// every ExtraFiles entry when it starts a child. O_NONBLOCK belongs to the
// open file description, which the master shares with every worker that
// inherited the socket: starting one worker turned the accept4 of the
// others into a blocking call, and a draining worker's Close then waited
// for a connection that might never come. A File made by os.NewFile from a
// descriptor that is already non-blocking keeps it so (see os.NewFile).
func fileOf(ln *net.TCPListener, name string) (*os.File, error) {
	rc, err := ln.SyscallConn()
	if err != nil {
		return nil, err
	}
	var fd int
	var dupErr error
	if err := rc.Control(func(s uintptr) {
		fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	if dupErr != nil {
		return nil, fmt.Errorf("duplicate socket: %w", dupErr)
	}
	return os.NewFile(uintptr(fd), name), nil
}
