// Command hello is the smallest brood application: one agent and one worker
// per CPU serving "Hello, World!" on :8080 (or $PORT).
//
//	go run ./examples/hello
//
// It also shows a job in the agent (once per machine), a schedule run by
// one worker per tick, and log files: with $BROOD_LOG_DIR every process
// writes app.log and the workers access.log there, rotated by the agent at
// midnight (and at $BROOD_LOG_MAX_SIZE):
//
//	BROOD_LOG_DIR=/tmp/hello-logs BROOD_LOG_MAX_SIZE=10MB go run ./examples/hello
//	mv /tmp/hello-logs/access.log /tmp/hello-logs/access.old; kill -USR1 <master pid>
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/broodhq/brood/agent"
	"github.com/broodhq/brood/app"
	"github.com/broodhq/brood/framework"
	"github.com/broodhq/brood/messenger"
)

func main() {
	r := chi.NewRouter()
	r.Get("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "Hello, World!")
	})
	r.Get("/whoami", func(w http.ResponseWriter, r *http.Request) {
		a := app.FromContext(r.Context())
		fmt.Fprintf(w, "worker %d, pid %d\n", a.Slot(), a.PID())
	})
	// One visit counter for the whole machine, kept by the agent: whichever
	// worker serves the request asks the agent to count.
	r.Get("/visits", func(w http.ResponseWriter, r *http.Request) {
		var n int64
		if err := app.FromContext(r.Context()).Messenger().CallAgent(r.Context(), "visit", nil, &n); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "%d visits\n", n)
	})

	if err := framework.Run(r,
		framework.WithAgent(func(a *agent.Agent) error {
			a.Logger().Info("agent up: background jobs live here")
			var visits atomic.Int64 // calls are answered concurrently
			a.Messenger().Handle("visit", func(context.Context, messenger.Message) (any, error) {
				return visits.Add(1), nil
			})
			// Once a minute on the whole machine, however many workers.
			a.Every(time.Minute, "visits-report", func(ctx context.Context) error {
				a.Logger().Info("visits so far", "visits", visits.Load())
				return nil
			})
			return nil
		}),
		framework.WithApp(func(a *app.App) error {
			a.OnReady(func() { a.Logger().Debug("cluster ready") })
			// Every worker registers it; the agent's clock runs it in one
			// worker per tick (app.AllWorkers: in each of them).
			a.Every(5*time.Minute, "refresh", func(ctx context.Context) error {
				a.Logger().Info("refreshing this worker's view of the world")
				return nil
			}, app.OneWorker)
			return nil
		}),
	); err != nil {
		os.Exit(1)
	}
}
