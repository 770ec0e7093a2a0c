package metrics

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

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
		serve(w, r, nil, func(ctx context.Context) ([]*dto.MetricFamily, error) {
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

// serve encodes what gather returns as promhttp would: the format that
// expfmt negotiates (text, protobuf or OpenMetrics), gzip if the scraper
// accepts it, a 500 if gather fails. It encodes the families itself
// rather than through promhttp.HandlerFor, whose registry would copy and
// sort again what the merger already sorted, and it compresses with
// gzip.BestSpeed: the scraper reads the same bytes, for a third of the
// CPU. cache, if not nil, keeps the encoding of families that come back
// unchanged (the aggregator's merger returns the same *dto.MetricFamily
// while its sources are the same).
func serve(w http.ResponseWriter, r *http.Request, cache *encodeCache, gather func(context.Context) ([]*dto.MetricFamily, error)) {
	fams, err := gather(r.Context())
	if err != nil {
		http.Error(w, "An error has occurred while serving metrics:\n\n"+err.Error(), http.StatusInternalServerError)
		return
	}
	format := expfmt.NegotiateIncludingOpenMetrics(r.Header)
	body, err := cache.encode(format, fams)
	if err != nil {
		http.Error(w, "An error has occurred while serving metrics:\n\n"+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", string(format))
	if !acceptsGzip(r.Header.Get("Accept-Encoding")) {
		w.Write(body)
		return
	}
	h.Set("Content-Encoding", "gzip")
	gz := gzipPool.Get().(*gzip.Writer)
	gz.Reset(w)
	gz.Write(body)
	gz.Close()
	gzipPool.Put(gz)
}

var gzipPool = sync.Pool{New: func() any {
	gz, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return gz
}}

// acceptsGzip reports whether an Accept-Encoding header accepts gzip (or
// any encoding) with a weight above 0.
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		name, params, _ := strings.Cut(part, ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name != "gzip" && name != "*" {
			continue
		}
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		if q > 0 {
			return true
		}
	}
	return false
}

// encodeCache keeps, per format, each family's encoding from the last
// scrape. A nil *encodeCache encodes everything.
type encodeCache struct {
	mu   sync.Mutex
	byFm map[expfmt.Format]map[*dto.MetricFamily][]byte
}

// encode returns fams encoded in format, reusing the encodings of the
// families the last scrape in that format encoded; it keeps only this
// scrape's.
func (c *encodeCache) encode(format expfmt.Format, fams []*dto.MetricFamily) ([]byte, error) {
	var prev, next map[*dto.MetricFamily][]byte
	if c != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.byFm == nil {
			c.byFm = map[expfmt.Format]map[*dto.MetricFamily][]byte{}
		}
		prev = c.byFm[format]
		next = make(map[*dto.MetricFamily][]byte, len(fams))
	}
	var out, one bytes.Buffer
	for _, mf := range fams {
		if b, ok := prev[mf]; ok {
			out.Write(b)
			next[mf] = b
			continue
		}
		one.Reset()
		if err := expfmt.NewEncoder(&one, format).Encode(mf); err != nil {
			return nil, fmt.Errorf("encode metric family %s: %w", mf.GetName(), err)
		}
		out.Write(one.Bytes())
		if next != nil {
			next[mf] = bytes.Clone(one.Bytes())
		}
	}
	// What the format ends with (OpenMetrics' "# EOF").
	if closer, ok := expfmt.NewEncoder(&out, format).(expfmt.Closer); ok {
		if err := closer.Close(); err != nil {
			return nil, fmt.Errorf("encode metrics: %w", err)
		}
	}
	if c != nil {
		c.byFm[format] = next
	}
	return out.Bytes(), nil
}

// server is the Aggregator's own listener.
type server struct {
	addr string
	srv  *http.Server
}

func newServer(a *Aggregator, addr string) *server {
	mux := http.NewServeMux()
	var cluster, slots encodeCache
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, &cluster, func(ctx context.Context) ([]*dto.MetricFamily, error) { return a.Gather(ctx, false) })
	})
	mux.HandleFunc("/metrics/slots", func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, &slots, func(ctx context.Context) ([]*dto.MetricFamily, error) { return a.Gather(ctx, true) })
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
