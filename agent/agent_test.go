package agent_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/broodhq/brood/agent"
	"github.com/broodhq/brood/schedule"
)

var t0 = time.Date(2026, 1, 5, 10, 7, 0, 0, time.UTC)

func newAgent(t *testing.T) (*agent.Agent, *schedule.Scheduler, *schedule.FakeClock) {
	t.Helper()
	clk := schedule.NewFakeClock(t0)
	s := schedule.New(schedule.Options{Clock: clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return agent.New(agent.Config{Scheduler: s}), s, clk
}

// waitIdle waits until no job is running, so that the next tick is not
// skipped as an overlap.
func waitIdle(t *testing.T, a *agent.Agent, runs int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var total int64
		running := false
		for _, j := range a.Jobs() {
			total += j.Runs
			running = running || j.Running
		}
		if total >= runs && !running {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("jobs did not finish %d runs: %+v", runs, a.Jobs())
}

func TestEveryRunsOnTheClockAndKeepsItsScheduleAfterAPanic(t *testing.T) {
	a, s, clk := newAgent(t)
	var calls atomic.Int64
	a.Every(time.Minute, "flaky", func(ctx context.Context) error {
		switch calls.Add(1) {
		case 1:
			panic("first run blows up")
		case 2:
			return errors.New("second run fails")
		}
		return nil
	})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(59 * time.Second)
	if got := calls.Load(); got != 0 {
		t.Fatalf("ran %d times before its first tick, want 0", got)
	}
	for i := int64(1); i <= 3; i++ {
		clk.Advance(time.Minute)
		waitIdle(t, a, i)
	}
	jobs := a.Jobs()
	if len(jobs) != 1 {
		t.Fatalf("got %d jobs, want 1: %+v", len(jobs), jobs)
	}
	j := jobs[0]
	if j.Name != "flaky" || j.Runs != 3 || j.Failures != 2 || j.LastError != "" {
		t.Errorf("got %+v, want flaky with 3 runs, 2 failures and no last error", j)
	}
	if want := t0.Add(4 * time.Minute); !j.NextRun.Equal(want) {
		t.Errorf("next run %v, want %v: a panic must not move the schedule", j.NextRun, want)
	}
}

func TestEveryPanicsOnWrongSetup(t *testing.T) {
	job := func(context.Context) error { return nil }
	tests := []struct {
		name string
		call func(a *agent.Agent)
		want string
	}{
		{"zero interval", func(a *agent.Agent) { a.Every(0, "x", job) }, "interval must be > 0"},
		{"no name", func(a *agent.Agent) { a.Every(time.Second, "", job) }, "needs a name"},
		{"nil job", func(a *agent.Agent) { a.Every(time.Second, "x", nil) }, "nil"},
		{"duplicate", func(a *agent.Agent) {
			a.Every(time.Second, "x", job)
			a.Every(time.Second, "x", job)
		}, "already used"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _, _ := newAgent(t)
			defer func() {
				p := recover()
				msg, _ := p.(string)
				if !strings.HasPrefix(msg, "agent.Every: ") || !strings.Contains(msg, tt.want) {
					t.Errorf("got panic %v, want agent.Every: ...%s...", p, tt.want)
				}
			}()
			tt.call(a)
		})
	}
}

func TestCronReportsWrongSetup(t *testing.T) {
	a, _, _ := newAgent(t)
	job := func(context.Context) error { return nil }
	if err := a.Cron("0 3 * * *", "nightly", job); err != nil {
		t.Fatalf("valid spec: %v", err)
	}
	if err := a.Cron("61 * * * *", "bad", job); !errors.Is(err, schedule.ErrInvalidSchedule) {
		t.Errorf("bad spec: got %v, want ErrInvalidSchedule", err)
	}
	if err := a.Cron("@hourly", "nightly", job); !errors.Is(err, schedule.ErrDuplicateName) {
		t.Errorf("duplicate: got %v, want ErrDuplicateName", err)
	}
	if jobs := a.Jobs(); len(jobs) != 1 || jobs[0].Schedule != "0 3 * * *" {
		t.Errorf("got jobs %+v, want only nightly", jobs)
	}
}
