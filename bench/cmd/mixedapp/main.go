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
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/broodhq/brood/bench/internal/mixedload"
	"github.com/broodhq/brood/framework"
)

func main() {
	r := chi.NewRouter()
	r.Get("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "Hello, World!")
	})
	r.Get("/slow", func(w http.ResponseWriter, r *http.Request) {
		mixedload.Burn(20 * time.Millisecond)
		fmt.Fprintln(w, "done")
	})
	if err := framework.Run(r, framework.WithMiddleware()); err != nil {
		os.Exit(1)
	}
}
