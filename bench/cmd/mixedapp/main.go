// Command mixedapp is the brood application of cmd/sharedcluster: GET /
// answers hello, GET /slow burns 20 ms of the thread's CPU first, the
// CPU-heavy request that a load-blind balancer queues hello behind. The
// router is served bare (framework.WithMiddleware()), as in hellobare, so
// that what is compared is the balancing.
package main

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
	"time"

	"github.com/go-chi/chi/v5"
	"golang.org/x/sys/unix"

	"github.com/broodhq/brood/framework"
)

func main() {
	r := chi.NewRouter()
	r.Get("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "Hello, World!")
	})
	r.Get("/slow", func(w http.ResponseWriter, r *http.Request) {
		burn(20 * time.Millisecond)
		fmt.Fprintln(w, "done")
	})
	if err := framework.Run(r, framework.WithMiddleware()); err != nil {
		os.Exit(1)
	}
}

// burn spins until the thread has used d of CPU, however long the
// scheduler makes that take.
func burn(d time.Duration) {
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
