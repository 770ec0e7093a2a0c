// Command hello is the smallest brood application: one agent and one worker
// per CPU serving "Hello, World!" on :8080 (or $PORT).
//
//	go run ./examples/hello
package main

import (
	"fmt"
	"net/http"
	"os"

	"github.com/go-chi/chi/v5"

	"github.com/broodhq/brood/agent"
	"github.com/broodhq/brood/app"
	"github.com/broodhq/brood/framework"
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

	if err := framework.Run(r,
		framework.WithAgent(func(a *agent.Agent) error {
			a.Logger().Info("agent up: background jobs live here")
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
