package target

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// LockPath is the file every brood benchmark locks while it measures.
// Shell scripts can join the queue with flock(1):
//
//	flock -w 900 /tmp/brood-bench.lock ./my-benchmark.sh
const LockPath = "/tmp/brood-bench.lock"

// LockHeldEnv set to 1 says a parent (run.sh, through flock(1)) holds the
// lock for this whole process tree, so Exclusive must not wait for it.
const LockHeldEnv = "BROOD_BENCH_LOCK_HELD"

// Exclusive takes an exclusive flock on LockPath, waiting up to limit, so
// that two benchmarks on this machine run one after the other instead of
// measuring each other. The lock is released by the returned func, or when
// the process exits. If the lock cannot be had in time, Exclusive says so
// in its error and returns a no-op release: the caller may run anyway and
// report the run as shared.
//
// It waits in a blocking flock, as flock(1) does, so it takes its turn
// among the other waiters instead of losing every race to them.
func Exclusive(ctx context.Context, limit time.Duration) (release func(), err error) {
	if os.Getenv(LockHeldEnv) == "1" {
		return func() {}, nil
	}
	f, err := os.OpenFile(LockPath, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return func() {}, fmt.Errorf("benchmark lock: %w", err)
	}
	start := time.Now()
	got := make(chan error, 1)
	go func() { got <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case err := <-got:
		if err != nil {
			f.Close()
			return func() {}, fmt.Errorf("benchmark lock %s: %w", LockPath, err)
		}
		return func() { f.Close() }, nil
	case <-timer.C:
	case <-ctx.Done():
	}
	// Given up: if the lock arrives later, let it go at once.
	go func() {
		<-got
		f.Close()
	}()
	return func() {}, fmt.Errorf("benchmark lock %s still held by another benchmark after %s", LockPath, time.Since(start).Round(time.Second))
}

// Session starts a benchmark program's run: a context that Ctrl-C or
// SIGTERM ends (so the servers in use are still stopped), holding the
// machine's benchmark lock. name labels the note printed when the lock
// could not be had and the run goes on shared. done releases both.
func Session(name string) (ctx context.Context, done func()) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	release, err := Exclusive(ctx, 10*time.Minute)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v; running anyway\n", name, err)
	}
	return ctx, func() { release(); stop() }
}
