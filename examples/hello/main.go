// Command hello is the smallest brood application: one agent and one worker
// per CPU serving "Hello, World!" on :8080 (or $PORT).
//
//	go run ./examples/hello
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"

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
			return nil
		}),
		framework.WithApp(func(a *app.App) error {
			a.OnReady(func() { a.Logger().Debug("cluster ready") })
			return nil
		}),
	); err != nil {
		os.Exit(1)
	}
}
