package agentproc

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/broodhq/brood/internal/child"
	"github.com/broodhq/brood/internal/proclog"
	"github.com/broodhq/brood/schedule"
)

// rotationFixture is the agent's rotation on a fake clock, over a
// directory of real files, with the cluster-wide reopen replaced by a
// counter.
type rotationFixture struct {
	dir     string
	clk     *schedule.FakeClock
	reopens atomic.Int64
	fail    atomic.Bool // reopen reports that some process did not confirm
	stop    func()
}

func newRotationFixture(t *testing.T, start time.Time, logs RotationConfig) *rotationFixture {
	t.Helper()
	f := &rotationFixture{dir: t.TempDir(), clk: schedule.NewFakeClock(start)}
	logs.Dir = f.dir
	r := newLogRotation(logs, slog.New(slog.NewTextHandler(io.Discard, nil)), func(context.Context) error {
		f.reopens.Add(1)
		if f.fail.Load() {
			return child.ErrNotReopened
		}
		return nil
	})
	r.clock, r.loc = f.clk, start.Location()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.run(ctx) }()
	f.stop = func() { cancel(); <-done }
	t.Cleanup(f.stop)
	// run arms its timers in its own goroutine: wait until they exist, or
	// the first Advance would find nothing to fire.
	want := 0
	if logs.Daily {
		want++
	}
	if logs.MaxSize > 0 {
		want++
	}
	waitFor(t, func() bool { return f.clk.Pending() == want })
	return f
}

func (f *rotationFixture) write(t *testing.T, name string, n int) {
	t.Helper()
	fh, err := os.OpenFile(filepath.Join(f.dir, name), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.WriteString(strings.Repeat("x", n-1) + "\n"); err != nil {
		t.Fatal(err)
	}
}

func (f *rotationFixture) files(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met within 5s")
}

func TestRotationAtLocalMidnight(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	start := time.Date(2026, 3, 28, 23, 59, 0, 0, loc) // the night before DST starts
	f := newRotationFixture(t, start, RotationConfig{Daily: true, Compress: true})
	f.write(t, proclog.AppLogName, 100)
	f.write(t, proclog.AccessLogName, 100)

	f.clk.Advance(59 * time.Second)
	time.Sleep(50 * time.Millisecond)
	if got := f.reopens.Load(); got != 0 {
		t.Fatalf("reopened %d times a second before midnight, want 0", got)
	}
	f.clk.Advance(time.Second)
	waitFor(t, func() bool { return len(f.files(t)) == 2 && strings.HasSuffix(f.files(t)[0], ".gz") })
	names := f.files(t)
	for _, n := range names {
		if !strings.HasSuffix(n, ".log.gz") {
			t.Errorf("after midnight got %v, want both files rotated and gzipped", names)
		}
	}
	if got := f.reopens.Load(); got != 1 {
		t.Errorf("got %d reopen rounds for one midnight, want 1 for both files", got)
	}

	// The next day is 23 hours long: the next rotation is 23h later, not 24.
	f.write(t, proclog.AccessLogName, 100)
	waitFor(t, func() bool { return f.clk.Pending() == 1 })
	f.clk.Advance(23*time.Hour - time.Second)
	time.Sleep(50 * time.Millisecond)
	if got := f.reopens.Load(); got != 1 {
		t.Fatalf("rotated again before the next midnight (%d rounds)", got)
	}
	f.clk.Advance(time.Second)
	waitFor(t, func() bool { return f.reopens.Load() == 2 })
}

func TestRotationBySizeWaitsForEveryProcess(t *testing.T) {
	start := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	f := newRotationFixture(t, start, RotationConfig{MaxSize: 1000, Check: time.Second, Compress: true})
	f.write(t, proclog.AccessLogName, 999)
	f.clk.Advance(time.Second)
	time.Sleep(50 * time.Millisecond)
	if got := f.reopens.Load(); got != 0 {
		t.Fatalf("rotated a file under the size limit (%d rounds)", got)
	}

	// A process that does not confirm: the rotated file must stay
	// uncompressed, since it may still be writing to it.
	f.fail.Store(true)
	f.write(t, proclog.AccessLogName, 10)
	waitFor(t, func() bool { return f.clk.Pending() == 1 })
	f.clk.Advance(time.Second)
	waitFor(t, func() bool { return f.reopens.Load() == 1 })
	time.Sleep(50 * time.Millisecond)
	names := f.files(t)
	if len(names) != 1 || !strings.HasPrefix(names[0], "access-") || !strings.HasSuffix(names[0], ".log") {
		t.Fatalf("got %v, want only the rotated access log, uncompressed", names)
	}

	// The next rotation, confirmed, finishes both.
	f.fail.Store(false)
	f.write(t, proclog.AccessLogName, 1000)
	waitFor(t, func() bool { return f.clk.Pending() == 1 })
	f.clk.Advance(time.Second)
	waitFor(t, func() bool {
		names := f.files(t)
		return len(names) == 2 && strings.HasSuffix(names[0], ".gz") && strings.HasSuffix(names[1], ".gz")
	})
}
