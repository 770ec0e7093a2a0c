package main

import (
	"io"
	"net"
	"syscall"
	"unsafe"
)

// rawIO reads and writes a non-blocking socket with raw system calls,
// waiting in the netpoller, as brood's channels do (internal/wire):
// net.Conn's Read and Write use syscall.Read and syscall.Write, which tell
// the scheduler they may block and so wake its monitor thread whenever it
// sleeps, a cost brood does not pay. The bare ping-pong uses this, so that
// it is the best a bare Go program does, not a handicapped one.
type rawIO struct{ rc syscall.RawConn }

func newRawIO(c net.Conn) (*rawIO, error) {
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return nil, err
	}
	return &rawIO{rc}, nil
}

func (r *rawIO) Read(p []byte) (int, error) {
	var n int
	var e syscall.Errno
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			m, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			n, e = int(m), errno
			if e != syscall.EINTR {
				return e != syscall.EAGAIN
			}
		}
	})
	switch {
	case err != nil:
		return 0, err
	case e != 0:
		return 0, e
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (r *rawIO) Write(p []byte) (int, error) {
	done := 0
	var e syscall.Errno
	err := r.rc.Write(func(fd uintptr) bool {
		for done < len(p) {
			m, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[done])), uintptr(len(p)-done))
			switch errno {
			case 0:
				done += int(m)
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false
			default:
				e = errno
				return true
			}
		}
		return true
	})
	if err == nil && e != 0 {
		err = e
	}
	return done, err
}
