//go:build unix

package reuseport

import (
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// slotFile returns a new descriptor of ln's socket as a file that can be
// handed to exec.Cmd.ExtraFiles any number of times without changing the
// socket for the processes already serving it.
//
// The file TCPListener.File returns puts the socket in blocking mode when
// its Fd method is called, and os/exec calls Fd on every extra file.
// O_NONBLOCK belongs to the open file description that every descriptor of
// the socket, in every process, shares: a worker's accept then blocks in the
// system call, and closing its listener waits for the next connection
// (measured: a worker stopping with no traffic never returned from Close).
// os.NewFile on a non-blocking descriptor keeps it non-blocking through Fd.
func slotFile(ln *net.TCPListener, name string) (*os.File, error) {
	rc, err := ln.SyscallConn()
	if err != nil {
		return nil, err
	}
	dup := -1
	var derr error
	if err := rc.Control(func(fd uintptr) { dup, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, derr
	}
	return os.NewFile(uintptr(dup), name), nil
}
