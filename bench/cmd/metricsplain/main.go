// Command metricsplain is the baseline of cmd/metricsbench: one net/http
// process (GOMAXPROCS default) serving the same instrumented handler as
// cmd/metricsapp, with promhttp on /metrics, as an application does without
// brood. It listens on $BROOD_ADDR (default :8080); $METRICS_SERIES extra
// series are registered as in cmd/metricsapp.
package main

import (
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/broodhq/brood/bench/cmd/metricsapp/instrumented"
)

func main() {
	addr := ":8080"
	if a := os.Getenv("BROOD_ADDR"); a != "" {
		addr = a
	}
	series, _ := strconv.Atoi(os.Getenv("METRICS_SERIES"))
	instrumented.Extra(series, os.Getenv("METRICS_CHURN") == "1")
	r := chi.NewRouter()
	r.Get("/", instrumented.Hello)
	r.Handle("/metrics", promhttp.Handler())
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatalf("metricsplain: %v", err)
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
	log.Fatal(srv.Serve(ln))
}
