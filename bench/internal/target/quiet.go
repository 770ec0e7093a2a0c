package target

import (
	"context"
	"time"
)

// WaitQuiet waits until the machine, sampled over window, has been busy on
// average for at most maxBusy cores, or until limit has passed. It reports
// the last sample and whether the machine was quiet. Benchmarks call it
// before each run so that other work on this shared machine (builds, other
// people's tests) lands between runs rather than inside them.
func WaitQuiet(maxBusy float64, window, limit time.Duration) (busy float64, quiet bool) {
	return WaitQuietContext(context.Background(), maxBusy, window, limit)
}

// WaitQuietContext is WaitQuiet that gives up when ctx is done.
func WaitQuietContext(ctx context.Context, maxBusy float64, window, limit time.Duration) (busy float64, quiet bool) {
	end := time.Now().Add(limit)
	for {
		m0, t0 := MachineTicks(), time.Now()
		select {
		case <-ctx.Done():
			return busy, false
		case <-time.After(window):
		}
		busy = Cores(MachineTicks().Busy-m0.Busy, time.Since(t0))
		if busy <= maxBusy {
			return busy, true
		}
		if time.Now().After(end) {
			return busy, false
		}
	}
}
