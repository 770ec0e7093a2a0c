// Command hellobare is examples/hello with the default middleware chain
// removed (framework.WithMiddleware() with nothing): the router is served
// bare, as cmd/plain serves it, so a comparison with plain isolates the
// process model from the cost of request ids, health probes, the access
// log and panic recovery.
package main

import (
	"fmt"
	"net/http"
	"os"

	"github.com/go-chi/chi/v5"

	"github.com/broodhq/brood/framework"
)

func main() {
	r := chi.NewRouter()
	r.Get("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "Hello, World!")
	})
	if err := framework.Run(r, framework.WithMiddleware()); err != nil {
		os.Exit(1)
	}
}
