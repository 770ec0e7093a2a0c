package target

import "time"

// WaitQuiet waits until the machine, sampled over window, has been busy on
// average for at most maxBusy cores, or until limit has passed. It reports
// the last sample and whether the machine was quiet. Benchmarks call it
// before each run so that other work on this shared machine (builds, other
// people's tests) lands between runs rather than inside them.
func WaitQuiet(maxBusy float64, window, limit time.Duration) (busy float64, quiet bool) {
	end := time.Now().Add(limit)
	for {
		b0, _ := MachineTicks()
		t0 := time.Now()
		time.Sleep(window)
		b1, _ := MachineTicks()
		busy = float64(b1-b0) / TicksPerSecond / time.Since(t0).Seconds()
		if busy <= maxBusy {
			return busy, true
		}
		if time.Now().After(end) {
			return busy, false
		}
	}
}
