package schedule_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/broodhq/brood/schedule"
)

func noop(context.Context) error { return nil }

func TestDuplicateNamesAreRefused(t *testing.T) {
	every := func(s *schedule.Scheduler) error { return s.Every(time.Hour, "dup", noop) }
	cron := func(s *schedule.Scheduler) error { return s.Cron("@daily", "dup", noop) }
	for _, tc := range []struct {
		name          string
		first, second func(*schedule.Scheduler) error
		startBetween  bool
		wantSchedule  string
	}{
		{"every then every", every, every, false, "every 1h0m0s"},
		{"every then cron", every, cron, false, "every 1h0m0s"},
		{"cron then every", cron, every, false, "@daily"},
		{"after start", every, cron, true, "every 1h0m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, t0, time.UTC)
			if err := tc.first(f.s); err != nil {
				t.Fatal(err)
			}
			if tc.startBetween {
				f.start(t)
			}
			err := tc.second(f.s)
			if !errors.Is(err, schedule.ErrDuplicateName) || !strings.Contains(err.Error(), `"dup"`) {
				t.Fatalf("got error %v, want ErrDuplicateName naming \"dup\"", err)
			}
			if st := f.s.Status(); len(st) != 1 || st[0].Schedule != tc.wantSchedule {
				t.Errorf("got %+v, want the first job (%s) alone", st, tc.wantSchedule)
			}
		})
	}
}

func TestAddAndRemoveAfterStart(t *testing.T) {
	f := newFixture(t, t0, time.UTC)
	f.start(t)
	f.clk.Advance(30 * time.Second)

	ran := make(chan time.Time, 10)
	if err := f.s.Every(time.Minute, "j", recordNow(f.clk, ran)); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Cron("*/15 * * * *", "quarter", noop); err != nil {
		t.Fatal(err)
	}
	if got, want := f.status(t, "quarter").NextRun, time.Date(2026, 1, 5, 10, 15, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("cron added after Start: NextRun got %v, want %v", got, want)
	}
	stepTo(t, f, ran, t0.Add(90*time.Second), 1)

	if !f.s.Remove("j") {
		t.Fatal("Remove(j) = false, want true")
	}
	if f.s.Remove("j") {
		t.Error("second Remove(j) = true, want false")
	}
	if got := f.clk.Pending(); got != 1 {
		t.Errorf("timers after Remove: got %d, want 1 (quarter's)", got)
	}
	f.clk.Advance(time.Hour)
	select {
	case at := <-ran:
		t.Fatalf("removed job ran at %v", at)
	default:
	}
	if st := f.s.Status(); len(st) != 1 || st[0].Name != "quarter" {
		t.Errorf("Status after Remove: got %+v, want quarter alone", st)
	}
	// The name is free again.
	if err := f.s.Every(time.Minute, "j", noop); err != nil {
		t.Errorf("re-adding a removed name: %v", err)
	}
}

func TestOverlap(t *testing.T) {
	for _, tc := range []struct {
		name        string
		opts        []schedule.JobOption
		wantRuns    int64
		wantSkipped int64
	}{
		{"skipped by default", nil, 1, 2},
		{"allowed on request", []schedule.JobOption{schedule.AllowOverlap()}, 3, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, t0, nil)
			started := make(chan struct{}, 10)
			release := make(chan struct{})
			job := func(context.Context) error {
				started <- struct{}{}
				<-release
				return nil
			}
			if err := f.s.Every(time.Minute, "j", job, tc.opts...); err != nil {
				t.Fatal(err)
			}
			f.start(t)
			for range 3 {
				f.clk.Advance(time.Minute)
			}
			for i := range tc.wantRuns {
				recv(t, started, "run "+string(rune('1'+i)))
			}
			st := f.status(t, "j")
			if st.Runs != tc.wantRuns || st.Skipped != tc.wantSkipped || !st.Running {
				t.Errorf("three ticks into a blocked run: got runs=%d skipped=%d running=%v, want runs=%d skipped=%d running=true",
					st.Runs, st.Skipped, st.Running, tc.wantRuns, tc.wantSkipped)
			}
			if tc.wantSkipped > 0 && !strings.Contains(f.log.String(), "tick skipped") {
				t.Errorf("skipped tick not logged:\n%s", f.log)
			}

			// Once the run ends, the next tick runs again.
			close(release)
			waitFor(t, "runs to finish", func() bool { return !f.status(t, "j").Running })
			f.clk.Advance(time.Minute)
			recv(t, started, "the run after")
			if got := f.status(t, "j").Runs; got != tc.wantRuns+1 {
				t.Errorf("tick after the run ended: got %d runs, want %d", got, tc.wantRuns+1)
			}
		})
	}
}

func TestFailingJobKeepsItsSchedule(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fail    func() error
		wantErr string
		wantLog []string
	}{
		{"error", func() error { return errors.New("disk full") }, "disk full",
			[]string{`msg="job failed" job=flaky err="disk full"`}},
		{"panic", func() error { panic("boom") }, "panic: boom",
			[]string{`msg="job panicked" job=flaky panic=boom`, `stack="goroutine `, "TestFailingJobKeepsItsSchedule"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, t0, nil)
			var calls atomic.Int32
			job := func(context.Context) error {
				if calls.Add(1) == 1 {
					return tc.fail()
				}
				return nil
			}
			if err := f.s.Every(time.Minute, "flaky", job); err != nil {
				t.Fatal(err)
			}
			f.start(t)

			f.clk.Advance(time.Minute)
			waitFor(t, "the failure", func() bool { return f.status(t, "flaky").Failures == 1 })
			st := f.status(t, "flaky")
			if st.LastError != tc.wantErr || st.Running {
				t.Errorf("after the failing run: got last_error=%q running=%v, want %q, false", st.LastError, st.Running, tc.wantErr)
			}
			for _, want := range tc.wantLog {
				if !strings.Contains(f.log.String(), want) {
					t.Errorf("log lacks %q:\n%s", want, f.log)
				}
			}

			f.clk.Advance(time.Minute)
			waitFor(t, "the second run", func() bool { st := f.status(t, "flaky"); return st.Runs == 2 && !st.Running })
			st = f.status(t, "flaky")
			if st.LastError != "" || st.Failures != 1 {
				t.Errorf("after a good run: got last_error=%q failures=%d, want \"\", 1", st.LastError, st.Failures)
			}
			if want := t0.Add(3 * time.Minute); !st.NextRun.Equal(want) {
				t.Errorf("NextRun: got %v, want %v", st.NextRun, want)
			}
		})
	}
}

func TestStopCancelsAndWaits(t *testing.T) {
	f := newFixture(t, t0, nil)
	started := make(chan struct{}, 1)
	cause := make(chan error, 1)
	var finished atomic.Bool
	job := func(ctx context.Context) error {
		started <- struct{}{}
		<-ctx.Done()
		cause <- context.Cause(ctx)
		// Long enough that a Stop that did not wait would return first.
		time.Sleep(50 * time.Millisecond)
		finished.Store(true)
		return ctx.Err()
	}
	if err := f.s.Every(time.Minute, "j", job); err != nil {
		t.Fatal(err)
	}
	f.start(t)
	f.clk.Advance(time.Minute)
	recv(t, started, "the run")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.s.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !finished.Load() {
		t.Error("Stop returned before the job did")
	}
	if got := recv(t, cause, "the cause"); !errors.Is(got, schedule.ErrStopped) {
		t.Errorf("job context cause: got %v, want ErrStopped", got)
	}
	if n := f.clk.Pending(); n != 0 {
		t.Errorf("%d timers left after Stop, want 0", n)
	}
	f.clk.Advance(time.Hour)
	if st := f.status(t, "j"); st.Runs != 1 || !st.NextRun.IsZero() {
		t.Errorf("after Stop: got runs=%d next_run=%v, want 1 and zero", st.Runs, st.NextRun)
	}
	if err := f.s.Every(time.Minute, "late", noop); !errors.Is(err, schedule.ErrStopped) {
		t.Errorf("Every after Stop: got %v, want ErrStopped", err)
	}
	if err := f.s.Start(context.Background()); !errors.Is(err, schedule.ErrStopped) {
		t.Errorf("Start after Stop: got %v, want ErrStopped", err)
	}
}

func TestStopReportsJobsIgnoringTheirContext(t *testing.T) {
	f := newFixture(t, t0, nil)
	started := make(chan struct{}, 2)
	release := make(chan struct{})
	stubborn := func(context.Context) error {
		started <- struct{}{}
		<-release
		return nil
	}
	if err := f.s.Every(time.Minute, "stubborn", stubborn); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Every(time.Minute, "removed-but-running", stubborn); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Every(time.Minute, "polite", noop); err != nil {
		t.Fatal(err)
	}
	f.start(t)
	f.clk.Advance(time.Minute)
	recv(t, started, "first run")
	recv(t, started, "second run")
	f.s.Remove("removed-but-running")
	waitFor(t, "polite to finish", func() bool { return !f.status(t, "polite").Running })

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := f.s.Stop(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop: got %v, want an error wrapping context.DeadlineExceeded", err)
	}
	for _, name := range []string{"stubborn", "removed-but-running"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("Stop error %q does not name %s", err, name)
		}
	}
	if strings.Contains(err.Error(), "polite") {
		t.Errorf("Stop error %q names a job that finished", err)
	}

	// A later Stop waits for them again.
	close(release)
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.s.Stop(ctx); err != nil {
		t.Errorf("second Stop after the jobs returned: %v", err)
	}
}

func TestStartContextEndingStopsNewRuns(t *testing.T) {
	f := newFixture(t, t0, nil)
	if err := f.s.Every(time.Minute, "j", noop); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := f.s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Start(ctx); err == nil {
		t.Error("second Start: got nil error")
	}
	cancel()
	f.clk.Advance(time.Minute)
	if st := f.status(t, "j"); st.Runs != 0 || !st.NextRun.IsZero() {
		t.Errorf("tick after Start's ctx ended: got runs=%d next_run=%v, want 0 and zero", st.Runs, st.NextRun)
	}
}

func TestStatusJSON(t *testing.T) {
	f := newFixture(t, t0, nil)
	if err := f.s.Every(time.Minute, "b", func(context.Context) error { return errors.New("nope") }); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Cron("0 3 * * *", "a", noop); err != nil {
		t.Fatal(err)
	}
	f.start(t)
	f.clk.Advance(time.Minute)
	waitFor(t, "the failure", func() bool { return f.status(t, "b").Failures == 1 })

	st := f.s.Status()
	if len(st) != 2 || st[0].Name != "a" || st[1].Name != "b" {
		t.Fatalf("Status: got %+v, want a then b", st)
	}
	if st[0].Schedule != "0 3 * * *" || st[1].Schedule != "every 1m0s" {
		t.Errorf("Schedule: got %q and %q, want \"0 3 * * *\" and \"every 1m0s\"", st[0].Schedule, st[1].Schedule)
	}
	b, err := json.Marshal(st[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"name", "schedule", "last_start", "last_duration", "last_error", "next_run", "running", "runs", "skipped", "failures"} {
		if _, ok := m[key]; !ok {
			t.Errorf("JSON %s lacks %q", b, key)
		}
	}
}

// TestRealClock runs the default clock once, with timing loose enough for a
// loaded machine.
func TestRealClock(t *testing.T) {
	s := schedule.New(schedule.Options{})
	var runs atomic.Int32
	if err := s.Every(10*time.Millisecond, "j", func(context.Context) error { runs.Add(1); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two runs", func() bool { return runs.Load() >= 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	n := runs.Load()
	time.Sleep(30 * time.Millisecond)
	if got := runs.Load(); got != n {
		t.Errorf("ran %d times after Stop", got-n)
	}
}

func TestOnFinishSeesEveryRun(t *testing.T) {
	type run struct {
		job  string
		took time.Duration
		err  string
	}
	runs := make(chan run, 4)
	clk := schedule.NewFakeClock(t0)
	s := schedule.New(schedule.Options{Clock: clk, Logger: slog.New(slog.DiscardHandler), OnFinish: func(job string, took time.Duration, err error) {
		r := run{job: job, took: took}
		if err != nil {
			r.err = err.Error()
		}
		runs <- r
	}})
	defer s.Stop(context.Background())
	var n atomic.Int32
	if err := s.Every(time.Minute, "sync", func(context.Context) error {
		clk.Advance(2 * time.Second) // the run takes two seconds of the clock
		if n.Add(1) == 2 {
			return errors.New("remote down")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, want := range []run{{"sync", 2 * time.Second, ""}, {"sync", 2 * time.Second, "remote down"}} {
		if i == 0 {
			clk.Advance(time.Minute)
		} else {
			clk.Advance(time.Minute - 2*time.Second) // the run moved the clock too
		}
		select {
		case got := <-runs:
			if got != want {
				t.Fatalf("run %d: OnFinish got %+v, want %+v", i+1, got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("run %d: OnFinish not called", i+1)
		}
	}
}
