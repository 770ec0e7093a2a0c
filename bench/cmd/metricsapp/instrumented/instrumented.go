// Package instrumented is the handler cmd/metricsapp and cmd/metricsplain
// both serve: a counter and a histogram per request, with client_golang.
package instrumented

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	requests = promauto.NewCounter(prometheus.CounterOpts{Name: "app_requests_total", Help: "Requests served."})
	took     = promauto.NewHistogram(prometheus.HistogramOpts{Name: "app_request_seconds", Help: "Time to serve a request.", Buckets: prometheus.DefBuckets})
)

// Hello writes the hello-world body, counted and timed.
func Hello(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	fmt.Fprintln(w, "Hello, World!")
	requests.Inc()
	took.Observe(time.Since(start).Seconds())
}

// Extra registers n counter series, each with a value, in the default
// registry.
func Extra(n int) {
	if n <= 0 {
		return
	}
	c := promauto.NewCounterVec(prometheus.CounterOpts{Name: "app_extra_total", Help: "Series for the scrape benchmark."}, []string{"key"})
	for i := range n {
		c.WithLabelValues("k" + strconv.Itoa(i)).Add(float64(i))
	}
}
