package boltstore

import (
	"io"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// A log append is one pwrite into the page cache, a few microseconds, once
// per group of writes. Through os.File it tells the scheduler it may block,
// and that wakes the runtime's monitor thread, which sleeps whenever the
// agent idles, so every group paid a wake-up of a second thread (measured:
// runtime.entersyscallWakeSysmon, 9% of the agent's CPU under a stream of
// Incr; cmd/storebench: the raw call saves 4% of the whole cluster's CPU
// per request). internal/wire does the same for its sockets.
//
// Unlike a socket's, a file write can block: when the kernel throttles
// writers because too much of memory is dirty, it sleeps in the call for up
// to 200 ms, and a raw call keeps the agent's only scheduler slot meanwhile,
// so its reads would wait too. An append that takes longer than slowAppend
// therefore turns the log to the ordinary call for plainFor, during which
// the runtime hands the slot to another thread while the write sleeps.
const (
	slowAppend = time.Millisecond
	plainFor   = 10 * time.Second
)

// writeAt writes b at off in the log, whole, or fails.
func (l *wal) writeAt(b []byte, off int64) error {
	start := l.now()
	if start.Before(l.plainUntil) {
		_, err := l.f.WriteAt(b, off)
		return err
	}
	err := pwrite(l.f.Fd(), b, off)
	if end := l.now(); end.Sub(start) > slowAppend {
		l.plainUntil = end.Add(plainFor)
	}
	if err != nil {
		return &os.PathError{Op: "write", Path: l.f.Name(), Err: err}
	}
	return nil
}

// pwrite is pwrite(2) without the scheduler's bookkeeping, retried until b
// is written.
func pwrite(fd uintptr, b []byte, off int64) error {
	for len(b) > 0 {
		n, _, e := syscall.RawSyscall6(syscall.SYS_PWRITE64, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(off), 0, 0)
		switch {
		case e == syscall.EINTR:
			continue
		case e != 0:
			return e
		case n == 0:
			return io.ErrShortWrite
		}
		b = b[n:]
		off += int64(n)
	}
	return nil
}
