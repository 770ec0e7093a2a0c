package wire

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// recvFlags makes received descriptors close-on-exec atomically.
const recvFlags = unix.MSG_CMSG_CLOEXEC

// The channel's descriptors are non-blocking, so a read or write returns
// at once (EAGAIN when it would block). That makes raw system calls safe,
// and they matter: syscall.Read and syscall.Write tell the scheduler they
// may block, which wakes the runtime's monitor thread whenever it sleeps,
// and it sleeps whenever the process idles, so between two messages of a
// request/reply exchange every read and write woke a second thread
// (measured with pprof: runtime.entersyscallWakeSysmon, 16% of the agent's
// CPU in a CallAgent loop).

func read(fd uintptr, p []byte) (int, error) {
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func write(fd uintptr, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
