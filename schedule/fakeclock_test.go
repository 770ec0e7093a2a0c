package schedule_test

import (
	"slices"
	"testing"
	"time"

	"github.com/broodhq/brood/schedule"
)

func TestFakeClock(t *testing.T) {
	clk := schedule.NewFakeClock(t0)
	var fired []string
	at := func(name string) func() {
		return func() { fired = append(fired, name+"@"+clk.Now().Sub(t0).String()) }
	}
	clk.AfterFunc(3*time.Second, at("c"))
	clk.AfterFunc(time.Second, at("a1"))
	clk.AfterFunc(2*time.Second, at("b"))
	clk.AfterFunc(time.Second, at("a2"))
	stopped := clk.AfterFunc(2*time.Second, at("stopped"))
	clk.AfterFunc(10*time.Second, at("later"))
	clk.AfterFunc(2*time.Second, func() {
		// A timer that a callback makes already due fires in the same
		// Advance, in deadline order: now is 5s, so after c.
		clk.AfterFunc(0, at("chained"))
	})

	if !stopped.Stop() {
		t.Error("Stop on a pending timer: got false, want true")
	}
	if stopped.Stop() {
		t.Error("second Stop: got true, want false")
	}

	clk.Advance(5 * time.Second)
	want := []string{"a1@5s", "a2@5s", "b@5s", "c@5s", "chained@5s"}
	if !slices.Equal(fired, want) {
		t.Errorf("fired %v, want %v", fired, want)
	}
	if got := clk.Pending(); got != 1 {
		t.Errorf("Pending: got %d, want 1 (later)", got)
	}

	// A due timer made outside Advance waits for the next one.
	fired = nil
	clk.AfterFunc(0, at("now"))
	if len(fired) != 0 {
		t.Errorf("AfterFunc(0) fired at once: %v", fired)
	}
	clk.Advance(0)
	if want := []string{"now@5s"}; !slices.Equal(fired, want) {
		t.Errorf("Advance(0) fired %v, want %v", fired, want)
	}
}
