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
// registry. With churn, every one of them moves every 100 ms, so that no
// two reports of the process are alike.
func Extra(n int, churn bool) {
	if n <= 0 {
		return
	}
	c := promauto.NewCounterVec(prometheus.CounterOpts{Name: "app_extra_total", Help: "Series for the scrape benchmark."}, []string{"key"})
	series := make([]prometheus.Counter, n)
	for i := range n {
		series[i] = c.WithLabelValues("k" + strconv.Itoa(i))
		series[i].Add(float64(i))
	}
	if churn {
		go func() { // lives as long as the process
			for range time.Tick(100 * time.Millisecond) {
				for _, s := range series {
					s.Inc()
				}
			}
		}()
	}
}
