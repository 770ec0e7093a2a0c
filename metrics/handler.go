package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/broodhq/brood/app"
	"github.com/broodhq/brood/messenger"
)

// Handler serves the cluster view to a scrape that reached a worker, for
// mounting on the application's router:
//
//	r.Handle("/metrics", metrics.Handler())
//
// It asks the agent's aggregator, which asks every worker, and encodes the
// answer as promhttp would (text, protobuf or OpenMetrics, as the scraper
// accepts, compressed if it asks). Outside a brood cluster (a handler
// test) it serves prometheus.DefaultGatherer.
func Handler() http.Handler { return viewHandler(false) }

// SlotHandler is Handler for the per-slot view: every series with a slot
// label, nothing summed.
func SlotHandler() http.Handler { return viewHandler(true) }

func viewHandler(perSlot bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := app.FromContext(r.Context())
		var msgr *messenger.Messenger
		if a != nil {
			msgr = a.Messenger()
		}
		serve(w, r, func(ctx context.Context) ([]*dto.MetricFamily, error) {
			return askAgent(ctx, msgr, perSlot)
		})
	})
}

// askAgent gets a view from the aggregator.
func askAgent(ctx context.Context, msgr *messenger.Messenger, perSlot bool) ([]*dto.MetricFamily, error) {
	if msgr == nil {
		return prometheus.DefaultGatherer.Gather()
	}
	// The aggregator answers within its timeout; give it room beyond that.
	ctx, cancel := context.WithTimeout(ctx, DefaultScrapeTimeout+5*time.Second)
	defer cancel()
	var rep report
	err := msgr.CallAgent(ctx, actionScrape, scrapeRequest{PerSlot: perSlot}, &rep)
	if errors.Is(err, messenger.ErrNoCluster) {
		return prometheus.DefaultGatherer.Gather()
	}
	if err != nil {
		return nil, fmt.Errorf("ask the agent for the cluster's metrics: %w", err)
	}
	return decodeFamilies(rep.Data)
}

// serve encodes what gather returns with promhttp, which negotiates the
// format and compression.
func serve(w http.ResponseWriter, r *http.Request, gather func(context.Context) ([]*dto.MetricFamily, error)) {
	g := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return gather(r.Context()) })
	promhttp.HandlerFor(g, promhttp.HandlerOpts{EnableOpenMetrics: true}).ServeHTTP(w, r)
}

// server is the Aggregator's own listener.
type server struct {
	addr string
	srv  *http.Server
}

func newServer(a *Aggregator, addr string) *server {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, func(ctx context.Context) ([]*dto.MetricFamily, error) { return a.Gather(ctx, false) })
	})
	mux.HandleFunc("/metrics/slots", func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, func(ctx context.Context) ([]*dto.MetricFamily, error) { return a.Gather(ctx, true) })
	})
	return &server{addr: addr, srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}}
}

// bindRetry is how often the listener tries again to bind an address that
// is taken (by the agent this one replaces, still stopping).
const bindRetry = time.Second

// run binds and serves until ctx ends, retrying the bind while it fails.
func (s *server) run(ctx context.Context, log *slog.Logger) {
	var ln net.Listener
	for warned := false; ; warned = true {
		var err error
		var lc net.ListenConfig
		ln, err = lc.Listen(ctx, "tcp", s.addr)
		if err == nil {
			break
		}
		if !warned {
			log.Warn("metrics listener: cannot bind; retrying every second (framework.WithMetricsAddr, $BROOD_METRICS_ADDR)", "addr", s.addr, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(bindRetry):
		}
	}
	log.Info("serving cluster metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := s.srv.Shutdown(shut); err != nil {
			s.srv.Close()
		}
	}()
	if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("metrics listener stopped", "err", err)
	}
	<-done
}
