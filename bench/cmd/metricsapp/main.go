// Command metricsapp is the brood side of cmd/metricsbench: GET / counts
// a request and observes its duration with client_golang (promauto), and
// $METRICS_SERIES extra counter series are registered in every worker,
// so that a scrape has that many series per worker to merge
// ($METRICS_CHURN=1: all of them change every 100 ms). The router is
// served bare (framework.WithMiddleware()), as cmd/metricsplain serves its
// own, so the two differ in the process model and the aggregation only.
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/broodhq/brood/bench/cmd/metricsapp/instrumented"
	"github.com/broodhq/brood/framework"
	"github.com/broodhq/brood/metrics"
)

func main() {
	// Only workers serve requests that would create series; the agent
	// holds the same (empty) vectors, as in an application.
	if os.Getenv("BROOD_ROLE") == "worker" {
		series, _ := strconv.Atoi(os.Getenv("METRICS_SERIES"))
		instrumented.Extra(series, os.Getenv("METRICS_CHURN") == "1")
	}
	r := chi.NewRouter()
	r.Get("/", instrumented.Hello)
	r.Handle("/metrics", metrics.Handler())
	if err := framework.Run(r, framework.WithMiddleware(), framework.WithShutdownTimeout(5*time.Second)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
