package mixedload

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Result is what Run measured of the fast requests (GET /).
type Result struct {
	P50, P99, Max time.Duration
	FastPerSec    float64
}

// Run runs clients client loops against addr for d; in each, a request is
// GET /slow with probability slowShare and GET / otherwise. With keepAlive
// false every request opens a fresh connection. It fails if any request
// failed or no fast one completed.
func Run(addr string, clients int, d time.Duration, slowShare float64, keepAlive bool) (Result, error) {
	var (
		r     Result
		mu    sync.Mutex
		fast  []time.Duration
		fails int
		wg    sync.WaitGroup
	)
	deadline := time.Now().Add(d)
	for i := range clients {
		wg.Go(func() {
			tr := &http.Transport{DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			var mine []time.Duration
			bad := 0
			for time.Now().Before(deadline) {
				slow := rng.Float64() < slowShare
				path := "/"
				if slow {
					path = "/slow"
				}
				start := time.Now()
				resp, err := cl.Get("http://" + addr + path)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != 200 {
					bad++
					continue
				}
				if !slow {
					mine = append(mine, time.Since(start))
				}
			}
			mu.Lock()
			fast = append(fast, mine...)
			fails += bad
			mu.Unlock()
		})
	}
	wg.Wait()
	if fails > 0 {
		return r, fmt.Errorf("%d requests failed", fails)
	}
	if len(fast) == 0 {
		return r, fmt.Errorf("no fast request completed")
	}
	slices.Sort(fast)
	r.P50 = fast[len(fast)/2]
	r.P99 = fast[len(fast)*99/100]
	r.Max = fast[len(fast)-1]
	r.FastPerSec = float64(len(fast)) / d.Seconds()
	return r, nil
}

// Burn spins until the thread has used d of CPU, however long the
// scheduler makes that take.
func Burn(d time.Duration) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	end := ts.Nano() + d.Nanoseconds()
	for x := 0; ; x++ {
		if x%1024 == 0 {
			unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
			if ts.Nano() >= end {
				return
			}
		}
	}
}
