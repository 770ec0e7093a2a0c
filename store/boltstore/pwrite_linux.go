package boltstore

import (
	"io"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
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
// the runtime hands the slot to another thread while the write sleeps; and
// a log on a filesystem that can wait for a server (NFS, FUSE) never takes
// the raw call.
const (
	slowAppend = time.Millisecond
	plainFor   = 10 * time.Second
)

// writeAt writes b at off in the log, whole, or fails.
func (l *wal) writeAt(b []byte, off int64) error {
	var start time.Time
	if l.raw {
		start = l.now()
	}
	if !l.raw || start.Before(l.plainUntil) {
		_, err := l.f.WriteAt(b, off)
		return err
	}
	err := pwrite(l.f.Fd(), b, off)
	if end := l.now(); end.Sub(start) > slowAppend {
		l.plainUntil = end.Add(plainFor)
	}
	if err != nil {
		return &os.PathError{Op: "write", Path: l.path, Err: err}
	}
	return nil
}

// rawAppends says whether f's appends may take the raw call: f is on a
// filesystem of local disks or memory, where a write sleeps only for the
// kernel's throttling, while a network or user-space one (NFS, SMB, FUSE,
// anything not known) can hold a write as long as its server is away, and
// a raw call would stop the whole agent meanwhile.
func rawAppends(f *os.File) bool {
	var st unix.Statfs_t
	if unix.Fstatfs(int(f.Fd()), &st) != nil {
		return false
	}
	return localFS(int64(st.Type))
}

func localFS(magic int64) bool {
	const zfsSuperMagic = 0x2fc12fc1 // not in x/sys
	switch magic {
	case unix.EXT4_SUPER_MAGIC, unix.XFS_SUPER_MAGIC, unix.BTRFS_SUPER_MAGIC, unix.F2FS_SUPER_MAGIC,
		zfsSuperMagic, unix.TMPFS_MAGIC, unix.OVERLAYFS_SUPER_MAGIC:
		return true
	}
	return false
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
