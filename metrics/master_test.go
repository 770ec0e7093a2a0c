package metrics_test

import (
	"bytes"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// tryScrape is scrape for a listener that may be down for a moment (the
// agent's, while a reload replaces the agent): nil when it is.
func tryScrape(url string) map[string]*dto.MetricFamily {
	res, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		return nil
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != 200 {
		return nil
	}
	fams := map[string]*dto.MetricFamily{}
	dec := expfmt.NewDecoder(bytes.NewReader(body), expfmt.ResponseFormat(res.Header))
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err != nil {
			if err == io.EOF {
				return fams
			}
			return nil
		}
		fams[mf.GetName()] = mf
	}
}

// labelled returns the value of name's series whose label is value
// (counter or gauge), and whether there is one.
func labelled(fams map[string]*dto.MetricFamily, name, label, value string) (float64, bool) {
	for _, m := range fams[name].GetMetric() {
		if label == "" && len(m.Label) == 0 {
			return m.GetCounter().GetValue() + m.GetGauge().GetValue(), true
		}
		for _, l := range m.Label {
			if l.GetName() == label && l.GetValue() == value {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

// TestMasterCountsInClusterMetrics: what only the master knows (ready
// workers, restarts by slot, reloads by result) shows in the cluster's
// /metrics, through the agent.
func TestMasterCountsInClusterMetrics(t *testing.T) {
	c := start(t, 2)
	wait := func(what string, ok func(map[string]*dto.MetricFamily) bool) map[string]*dto.MetricFamily {
		t.Helper()
		var fams map[string]*dto.MetricFamily
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if f := tryScrape(c.metricsURL + "/metrics"); f != nil {
				if fams = f; ok(fams) {
					return fams
				}
			}
		}
		t.Fatalf("no scrape with %s within 30s; last brood_workers_ready %v, brood_restarts_total %v, brood_reloads_total %v",
			what, fams["brood_workers_ready"], fams["brood_restarts_total"], fams["brood_reloads_total"])
		return nil
	}
	wait("2 workers ready", func(f map[string]*dto.MetricFamily) bool {
		v, ok := labelled(f, "brood_workers_ready", "", "")
		return ok && v == 2
	})

	victim := workerPIDs(t, c)["1"]
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	fams := wait("worker 1 restarted once", func(f map[string]*dto.MetricFamily) bool {
		v, _ := labelled(f, "brood_restarts_total", "process", "1")
		ready, _ := labelled(f, "brood_workers_ready", "", "")
		return v == 1 && ready == 2
	})
	if v, ok := labelled(fams, "brood_restarts_total", "process", "2"); !ok || v != 0 {
		t.Errorf("brood_restarts_total{process=\"2\"}: got %v (present %v), want 0", v, ok)
	}

	c.Signal(syscall.SIGHUP)
	fams = wait("one reload ok", func(f map[string]*dto.MetricFamily) bool {
		v, _ := labelled(f, "brood_reloads_total", "result", "ok")
		return v == 1
	})
	if v, _ := labelled(fams, "brood_rollbacks_total", "", ""); v != 0 {
		t.Errorf("brood_rollbacks_total: got %v, want 0", v)
	}
	// The reload replaced the agent that reports these: the counts are
	// the master's, so they carry on.
	if v, _ := labelled(fams, "brood_restarts_total", "process", "1"); v != 1 {
		t.Errorf("after the reload, brood_restarts_total{process=\"1\"}: got %v, want 1", v)
	}
}
