package agent_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/broodhq/brood/agent"
	"github.com/broodhq/brood/internal/fleetlink"
	"github.com/broodhq/brood/schedule"
)

// recordingFleet runs every job it is asked to, with epoch 7, and records
// which it was asked for.
type recordingFleet struct {
	mu   sync.Mutex
	jobs []fleetlink.Job
}

func (f *recordingFleet) Run(ctx context.Context, j fleetlink.Job, job func(context.Context) error) (bool, error) {
	f.mu.Lock()
	f.jobs = append(f.jobs, j)
	f.mu.Unlock()
	return true, job(fleetlink.WithEpoch(ctx, 7))
}
func (f *recordingFleet) Broadcast(fleetlink.Envelope) error { return nil }
func (f *recordingFleet) Handover(context.Context) error     { return nil }
func (f *recordingFleet) Close(context.Context) error        { return nil }

// OncePerFleet jobs, and only they, go through the fleet, which hands them
// the lease's epoch.
func TestOncePerFleetRunsUnderTheFleet(t *testing.T) {
	clk := schedule.NewFakeClock(t0)
	s := schedule.New(schedule.Options{Clock: clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer s.Stop(context.Background())
	fl := &recordingFleet{}
	a := agent.New(agent.Config{Scheduler: s, Fleet: fl})
	epochs := make(chan int64, 3)
	record := func(ctx context.Context) error { epochs <- agent.EpochFromContext(ctx); return nil }
	a.Every(time.Minute, "fleetwide", record, agent.OncePerFleet)
	a.Every(time.Minute, "local", record)
	if err := a.Cron("@every 1m", "cronwide", record, agent.OncePerFleet); err != nil {
		t.Fatal(err)
	}
	s.Start(context.Background())
	clk.Advance(time.Minute)
	got := map[int64]int{}
	for range 3 {
		select {
		case e := <-epochs:
			got[e]++
		case <-time.After(5 * time.Second):
			t.Fatal("jobs did not run")
		}
	}
	if got[7] != 2 || got[0] != 1 {
		t.Errorf("epochs seen by the jobs: got %v, want two 7s (fleet jobs) and one 0 (local)", got)
	}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	want := map[fleetlink.Job]bool{{Name: "fleetwide", Every: time.Minute}: true, {Name: "cronwide"}: true}
	if len(fl.jobs) != 2 || !want[fl.jobs[0]] || !want[fl.jobs[1]] {
		t.Errorf("jobs run through the fleet: got %+v, want fleetwide (every 1m) and cronwide", fl.jobs)
	}
}
