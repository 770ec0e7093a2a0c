package target

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"
)

// LockPath is the file every brood benchmark locks while it measures.
const LockPath = "/tmp/brood-bench.lock"

// Exclusive takes an exclusive flock on LockPath, waiting up to limit, so
// that two benchmarks on this machine run one after the other instead of
// measuring each other. The lock is released by the returned func, or when
// the process exits. If the lock cannot be had in time, Exclusive says so
// in its error and returns a no-op release: the caller may run anyway and
// report the run as shared.
func Exclusive(ctx context.Context, limit time.Duration) (release func(), err error) {
	f, err := os.OpenFile(LockPath, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return func() {}, fmt.Errorf("benchmark lock: %w", err)
	}
	start := time.Now()
	end := start.Add(limit)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if err != syscall.EWOULDBLOCK || time.Now().After(end) || ctx.Err() != nil {
			f.Close()
			return func() {}, fmt.Errorf("benchmark lock %s still held by another benchmark after %s: %w", LockPath, time.Since(start).Round(time.Second), err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}
