package schedule_test

import (
	"context"
	"testing"
	"time"

	"github.com/broodhq/brood/schedule"
)

// A run's context carries its tick's due time, not the (later) start time:
// fleets key tick claims on it.
func TestDueFromContext(t *testing.T) {
	f := newFixture(t, t0, time.UTC)
	due := make(chan time.Time, 1)
	if err := f.s.Cron("*/15 * * * *", "q", func(ctx context.Context) error {
		d, ok := schedule.DueFromContext(ctx)
		if !ok {
			t.Error("DueFromContext: no due time in a job's context")
		}
		due <- d
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.start(t)
	f.clk.Advance(8*time.Minute + 3*time.Second) // 10:15:03, late by 3 s
	if got, want := recv(t, due, "the run"), time.Date(2026, 1, 5, 10, 15, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("due: got %v, want %v", got, want)
	}
	if _, ok := schedule.DueFromContext(context.Background()); ok {
		t.Error("DueFromContext(Background) reported a due time")
	}
}
