//go:build unix

package pidfile

import (
	"errors"
	"syscall"
)

// alive reports whether pid names a process. EPERM means it exists but
// belongs to someone else, which is still not ours to replace.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
