package schedule_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/broodhq/brood/schedule"
)

// t0 is a Monday, 10:07 UTC: not on any boundary the cron tests look for.
var t0 = time.Date(2026, 1, 5, 10, 7, 0, 0, time.UTC)

// logBuf collects a text log that job goroutines write while tests read it.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type fixture struct {
	s   *schedule.Scheduler
	clk *schedule.FakeClock
	log *logBuf
}

// newFixture returns a scheduler on a fake clock at start, logging at debug
// level into a buffer, and stops it when the test ends.
func newFixture(t *testing.T, start time.Time, loc *time.Location) fixture {
	t.Helper()
	f := fixture{clk: schedule.NewFakeClock(start), log: &logBuf{}}
	f.s = schedule.New(schedule.Options{
		Clock:    f.clk,
		Logger:   slog.New(slog.NewTextHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Location: loc,
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := f.s.Stop(ctx); err != nil {
			t.Errorf("cleanup Stop: %v", err)
		}
	})
	return f
}

func (f fixture) start(t *testing.T) {
	t.Helper()
	if err := f.s.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
}

// status returns the named job's status, failing the test if it is absent.
func (f fixture) status(t *testing.T, name string) schedule.JobStatus {
	t.Helper()
	for _, st := range f.s.Status() {
		if st.Name == name {
			return st
		}
	}
	t.Fatalf("no job %q in Status", name)
	return schedule.JobStatus{}
}

// waitFor polls cond, which waits on job goroutines rather than on time, so
// the generous limit only matters when something is broken.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// recv waits for a job to report on ch.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}
