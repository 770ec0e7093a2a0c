//go:build linux

package proc

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Executable is a binary held open so that it can still be started after a
// deploy replaced the file at its path: a rollback must run the previous
// generation, whose file may only exist as this open descriptor.
type Executable struct {
	Path string
	fd   int
	ino  uint64
	dev  uint64
}

// HoldExecutable opens path and keeps it open until Close.
func HoldExecutable(path string) (*Executable, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open executable %s: %w", path, err)
	}
	// Move it far above the descriptors a child inherits (3, 4, ...):
	// exec.Cmd dup2s ExtraFiles onto low numbers in the child before exec,
	// which would otherwise clobber the descriptor we exec through.
	high, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 1000)
	unix.Close(fd)
	if err != nil {
		return nil, fmt.Errorf("hold executable %s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(high, &st); err != nil {
		unix.Close(high)
		return nil, fmt.Errorf("stat executable %s: %w", path, err)
	}
	return &Executable{Path: path, fd: high, ino: st.Ino, dev: st.Dev}, nil
}

// ExecPath is what to exec to run this binary: its path while the file
// there is still this binary, otherwise the held descriptor through /proc
// (the child inherits it across fork and the kernel resolves it at exec).
func (e *Executable) ExecPath() string {
	var st unix.Stat_t
	if err := unix.Stat(e.Path, &st); err == nil && st.Ino == e.ino && st.Dev == e.dev {
		return e.Path
	}
	return "/proc/self/fd/" + strconv.Itoa(e.fd)
}

// Same reports whether the file at the path is this binary.
func (e *Executable) Same(other *Executable) bool {
	return other != nil && e.ino == other.ino && e.dev == other.dev
}

// Close releases the binary.
func (e *Executable) Close() error { return os.NewFile(uintptr(e.fd), e.Path).Close() }
