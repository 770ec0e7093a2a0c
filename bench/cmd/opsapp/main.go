// Command opsapp is examples/hello (the default middleware chain, "/" and
// "/whoami", the agent's visit counter) built for cmd/opsbench, plus
// "/whoami?sleep=20ms" for slow requests and one switch set at link time
// for the failed-deploy scenario. Every /whoami counts a visit with a
// CallAgent, as hello's /visits does, so that the operations, which
// replace the agent too, are measured with calls to it under way:
//
//	go build -ldflags '-X main.exitAtStart=yes' ./cmd/opsapp
//
// makes every worker exit with status 1 from its WithApp hook, the way a
// build with a bad configuration or a missing dependency dies at startup.
// It is a link-time constant rather than an environment variable because
// a reload re-executes whatever binary is on disk with the master's
// environment: only the file can carry the fault, as in a real deploy.
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

// exitAtStart, set to "yes" with -ldflags -X, makes workers exit at startup.
var exitAtStart string

func main() {
	r := chi.NewRouter()
	r.Get("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "Hello, World!")
	})
	r.Get("/whoami", func(w http.ResponseWriter, r *http.Request) {
		// ?sleep=20ms keeps requests in flight while workers drain.
		if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil && d > 0 {
			time.Sleep(min(d, time.Second))
		}
		a := app.FromContext(r.Context())
		var n int64
		if err := a.Messenger().CallAgent(r.Context(), "visit", nil, &n); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		// The pid last: cmd/opsbench reads it from the end.
		fmt.Fprintf(w, "visit %d, worker %d, pid %d\n", n, a.Slot(), a.PID())
	})

	if err := framework.Run(r,
		framework.WithAgent(func(a *agent.Agent) error {
			var visits atomic.Int64 // calls are answered concurrently
			a.Messenger().Handle("visit", func(context.Context, messenger.Message) (any, error) {
				return visits.Add(1), nil
			})
			return nil
		}),
		framework.WithApp(func(a *app.App) error {
			if exitAtStart == "yes" {
				a.Logger().Error("opsapp built with exitAtStart=yes: exiting at startup")
				os.Exit(1)
			}
			return nil
		}),
	); err != nil {
		os.Exit(1)
	}
}
