package metrics

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/broodhq/brood/metrics/internal/merge"
)

// registry returns a registry like a worker's: the Go and process
// collectors, plus series counters and histograms split by a label.
func registry(b *testing.B, series int) *prometheus.Registry {
	b.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "app_requests_total", Help: "h"}, []string{"route"})
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "app_request_seconds", Help: "h"}, []string{"route"})
	reg.MustRegister(c, h)
	// A histogram with the default buckets is 14 series (12 buckets, sum,
	// count); a counter one.
	for i := range series / 15 {
		route := "/r" + strconv.Itoa(i)
		c.WithLabelValues(route).Add(float64(i))
		h.WithLabelValues(route).Observe(float64(i%100) / 100)
	}
	return reg
}

// BenchmarkReport is what a worker spends on one report (each second, and
// once per scrape): gather, and encode for the messenger.
func BenchmarkReport(b *testing.B) {
	for _, series := range []int{0, 1_000, 10_000} {
		b.Run(fmt.Sprintf("app_series=%d", series), func(b *testing.B) {
			r := &Reporter{slot: "1", g: registry(b, series)}
			var size int
			for b.Loop() {
				rep, err := r.snapshot(holding{})
				if err != nil {
					b.Fatal(err)
				}
				size = len(rep.Data)
			}
			b.ReportMetric(float64(size), "bytes/report")
		})
	}
}

// BenchmarkMerge is the aggregator's share of a scrape of 4 workers:
// decode their reports, merge, and produce the cluster view.
func BenchmarkMerge(b *testing.B) {
	for _, series := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("4_workers_x_%d", series), func(b *testing.B) {
			var reps []report
			for w := range 4 {
				rep, err := (&Reporter{slot: strconv.Itoa(w), g: registry(b, series)}).snapshot(holding{})
				if err != nil {
					b.Fatal(err)
				}
				reps = append(reps, rep)
			}
			m := merge.New()
			seq := uint64(0)
			for b.Loop() {
				seq++
				now := time.Now()
				for w, rep := range reps {
					fams, err := decodeFamilies(rep.Data)
					if err != nil {
						b.Fatal(err)
					}
					m.Update(rep.Slot, 100+w, 0, seq, now, fams)
				}
				fams := m.Cluster(now)
				if _, err := encodeFamilies(fams); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchPeers answers the aggregator's gathers from fixed registries, as
// the workers' messenger would.
type benchPeers struct{ regs map[int]*Reporter }

func (p *benchPeers) AppPIDs() []int {
	var pids []int
	for pid := range p.regs {
		pids = append(pids, pid)
	}
	return pids
}

func (p *benchPeers) Call(_ context.Context, pid int, _ string, data, reply any) error {
	h, _ := data.(holding)
	rep, err := p.regs[pid].snapshot(h)
	*reply.(*report) = rep
	return err
}

// BenchmarkServe is a scrape of the agent's /metrics with 4 workers of
// 10,000 series each, as a Go client asks for it (text, gzip): collect,
// merge, encode, compress. The workers' gathers run in the same process.
func BenchmarkServe(b *testing.B) {
	p := &benchPeers{regs: map[int]*Reporter{}}
	for w := range 4 {
		p.regs[100+w] = &Reporter{slot: strconv.Itoa(w), g: registry(b, 10_000), runID: newRun()}
	}
	a := newAggregator(p, AggregatorConfig{Gatherer: prometheus.NewRegistry()})
	defer a.Stop()
	h := newServer(a, "").srv.Handler
	var size int
	for b.Loop() {
		req := httptest.NewRequest("GET", "/metrics", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(size), "bytes/scrape")
}
