//go:build !linux

package boltstore

import "os"

func rawAppends(*os.File) bool { return false }

// writeAt writes b at off in the log, whole, or fails (pwrite_linux.go says
// why Linux differs).
func (l *wal) writeAt(b []byte, off int64) error {
	_, err := l.f.WriteAt(b, off)
	return err
}
