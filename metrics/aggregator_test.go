package metrics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/broodhq/brood/messenger"
	"github.com/broodhq/brood/schedule"
)

// fakeWorker is a worker's registry as a fake messenger reaches it.
type fakeWorker struct {
	slot  string
	reg   *prometheus.Registry
	count prometheus.Counter
	seq   uint64
	stuck bool // answers nothing; the call waits for its deadline
}

// fakePeers stands in for the messenger in the agent.
type fakePeers struct {
	mu      sync.Mutex
	workers map[int]*fakeWorker
	order   []int
	calls   atomic.Int64
	gate    chan struct{} // if not nil, every call waits for it to close
}

func newFakePeers() *fakePeers { return &fakePeers{workers: map[int]*fakeWorker{}} }

func (f *fakePeers) add(pid int, slot string) *fakeWorker {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "req_total", Help: "requests"})
	reg.MustRegister(c)
	w := &fakeWorker{slot: slot, reg: reg, count: c}
	f.mu.Lock()
	f.workers[pid] = w
	f.order = append(f.order, pid)
	f.mu.Unlock()
	return w
}

func (f *fakePeers) remove(pid int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.workers, pid)
	for i, p := range f.order {
		if p == pid {
			f.order = append(f.order[:i], f.order[i+1:]...)
			break
		}
	}
}

func (f *fakePeers) AppPIDs() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.order...)
}

func (f *fakePeers) Call(ctx context.Context, pid int, action string, data, reply any) error {
	f.calls.Add(1)
	if action != actionGather {
		return fmt.Errorf("unexpected action %q", action)
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	w := f.workers[pid]
	f.mu.Unlock()
	if w == nil {
		return fmt.Errorf("pid %d: gone", pid)
	}
	if w.stuck {
		<-ctx.Done()
		return ctx.Err()
	}
	rep, err := w.report()
	*reply.(*report) = rep
	return err
}

func (w *fakeWorker) report() (report, error) {
	fams, err := w.reg.Gather()
	if err != nil {
		return report{}, err
	}
	b, err := encodeFamilies(fams)
	w.seq++
	return report{Slot: w.slot, Seq: w.seq, Data: b}, err
}

func testAggregator(p peers, timeout time.Duration) *Aggregator {
	return newAggregator(p, AggregatorConfig{Timeout: timeout, Gatherer: prometheus.NewRegistry()})
}

// samples encodes fams as text and returns the value of each sample line.
func samples(t *testing.T, fams []*dto.MetricFamily) map[string]float64 {
	t.Helper()
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range fams {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	out := map[string]float64{}
	for line := range strings.SplitSeq(buf.String(), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatal(err)
		}
		out[line[:i]] = v
	}
	return out
}

func TestGatherSumsWorkers(t *testing.T) {
	p := newFakePeers()
	p.add(10, "0").count.Add(3)
	p.add(11, "1").count.Add(4)
	a := testAggregator(p, time.Second)
	defer a.Stop()
	fams, err := a.Gather(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	got := samples(t, fams)
	if got["req_total"] != 7 || got[`brood_scrape_slot_up{slot="0"}`] != 1 || got[`brood_scrape_slot_up{slot="agent"}`] != 1 {
		t.Fatalf("got %v, want req_total 7 and slots 0 and agent up", got)
	}
}

func TestConcurrentScrapesShareOneCollection(t *testing.T) {
	p := newFakePeers()
	p.add(10, "0").count.Add(1)
	p.add(11, "1").count.Add(1)
	p.gate = make(chan struct{})
	a := testAggregator(p, 10*time.Second)
	defer a.Stop()
	const scrapes = 8
	var wg sync.WaitGroup
	errs := make(chan error, scrapes)
	for range scrapes {
		wg.Go(func() {
			_, err := a.Gather(t.Context(), false)
			errs <- err
		})
	}
	// Let every scrape join before the workers answer.
	deadline := time.Now().Add(5 * time.Second)
	for p.calls.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(p.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := p.calls.Load(); n != 2 {
		t.Fatalf("%d calls to workers for %d concurrent scrapes, want 2 (one collection)", n, scrapes)
	}
	// A scrape after the collection ended starts a new one.
	if _, err := a.Gather(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	if n := p.calls.Load(); n != 4 {
		t.Fatalf("%d calls after a later scrape, want 4", n)
	}
}

func TestAStuckWorkerYieldsAPartialAnswerInTime(t *testing.T) {
	p := newFakePeers()
	p.add(10, "0").count.Add(3)
	stuck := p.add(11, "1")
	stuck.count.Add(5)
	a := testAggregator(p, 200*time.Millisecond)
	defer a.Stop()
	// Slot 1 reported once before it got stuck.
	rep, _ := stuck.report()
	if err := a.record(rep, 11); err != nil {
		t.Fatal(err)
	}
	stuck.stuck = true
	a.now = func() time.Time { return time.Now().Add(time.Millisecond) } // the report predates the scrape
	start := time.Now()
	fams, err := a.Gather(t.Context(), false)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("scrape took %s with a 200ms timeout", took)
	}
	if err != nil {
		t.Fatal(err)
	}
	got := samples(t, fams)
	if got["req_total"] != 8 || got[`brood_scrape_slot_up{slot="1"}`] != 0 || got[`brood_scrape_slot_up{slot="0"}`] != 1 {
		t.Fatalf("got %v, want req_total 8 (slot 1's last report), slot 1 down, slot 0 up", got)
	}
}

func TestAGoneWorkerIsCarriedAndRetired(t *testing.T) {
	p := newFakePeers()
	p.add(10, "0").count.Add(7)
	a := testAggregator(p, time.Second)
	defer a.Stop()
	clock := time.Unix(1000, 0)
	a.now = func() time.Time { return clock }
	if _, err := a.Gather(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	p.remove(10)
	p.add(20, "0").count.Add(2)
	clock = clock.Add(retireGrace + time.Second)
	fams, err := a.Gather(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	if got := samples(t, fams)["req_total"]; got != 9 {
		t.Fatalf("req_total = %v after a replacement, want 9", got)
	}
	a.mu.Lock()
	procs := a.m.Procs()
	a.mu.Unlock()
	for _, pr := range procs {
		if pr.PID == 10 {
			t.Fatalf("pid 10 left %s ago and is still live: %v", retireGrace+time.Second, procs)
		}
	}
	// A late report from the retired pid changes nothing.
	late := newFakePeers().add(10, "0")
	late.count.Add(100)
	late.seq = 50
	rep, _ := late.report()
	_ = a.record(rep, 10)
	fams, _ = a.Gather(t.Context(), false)
	if got := samples(t, fams)["req_total"]; got != 9 {
		t.Fatalf("req_total = %v after a retired pid's late report, want 9", got)
	}
}

func TestRecordRefusesTheAgentSlot(t *testing.T) {
	a := testAggregator(newFakePeers(), time.Second)
	defer a.Stop()
	if err := a.record(report{Slot: AgentSlot}, 5); err == nil {
		t.Fatal("a worker's report claiming the agent's slot was accepted")
	}
}

func TestServerNegotiatesTheFormat(t *testing.T) {
	p := newFakePeers()
	p.add(10, "0").count.Add(3)
	a := testAggregator(p, time.Second)
	defer a.Stop()
	srv := httptest.NewServer(newServer(a, "").srv.Handler)
	defer srv.Close()
	tests := []struct {
		path, accept, wantType string
	}{
		{"/metrics", "", "text/plain"},
		{"/metrics", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited", "application/vnd.google.protobuf"},
		{"/metrics", "application/openmetrics-text;version=1.0.0", "application/openmetrics-text"},
		{"/metrics/slots", "", "text/plain"},
	}
	for _, tt := range tests {
		t.Run(tt.path+" "+tt.accept, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL+tt.path, nil)
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			ct := res.Header.Get("Content-Type")
			if res.StatusCode != 200 || !strings.HasPrefix(ct, tt.wantType) {
				t.Fatalf("status %d, Content-Type %q, want 200 and %s", res.StatusCode, ct, tt.wantType)
			}
			format := expfmt.ResponseFormat(res.Header)
			dec := expfmt.NewDecoder(bytes.NewReader(body), format)
			if tt.wantType == "application/openmetrics-text" {
				if !bytes.Contains(body, []byte("req_total 3")) || !bytes.HasSuffix(body, []byte("# EOF\n")) {
					t.Fatalf("OpenMetrics body lacks req_total 3 or # EOF:\n%s", body)
				}
				return
			}
			found := false
			for {
				mf := &dto.MetricFamily{}
				if err := dec.Decode(mf); err != nil {
					if err == io.EOF {
						break
					}
					t.Fatalf("decode %s: %v\n%s", format, err, body)
				}
				if mf.GetName() == "req_total" {
					found = true
					want := `slot="0"`
					if tt.path == "/metrics" {
						want = ""
					}
					if s := labelString(mf.Metric[0]); s != want {
						t.Errorf("req_total labels %q, want %q", s, want)
					}
				}
			}
			if !found {
				t.Fatalf("no req_total in\n%s", body)
			}
		})
	}
}

func labelString(m *dto.Metric) string {
	var parts []string
	for _, l := range m.Label {
		parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	return strings.Join(parts, ",")
}

func TestHandlerOutsideAClusterServesTheDefaultRegistry(t *testing.T) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "brood_test_handler_total", Help: "h"})
	prometheus.MustRegister(c)
	defer prometheus.Unregister(c)
	c.Add(2)
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), "brood_test_handler_total 2") {
		t.Fatalf("status %d, body lacks brood_test_handler_total 2:\n%.500s", rec.Code, rec.Body)
	}
}

func TestSnapshotsAreOrdered(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "c_total", Help: "h"})
	reg.MustRegister(c)
	r := &Reporter{slot: "3", g: reg}
	a, err := r.snapshot(holding{})
	if err != nil {
		t.Fatal(err)
	}
	c.Inc()
	b, _ := r.snapshot(holding{})
	if a.Seq >= b.Seq || b.Slot != "3" {
		t.Fatalf("seqs %d then %d, slot %q: want increasing, slot 3", a.Seq, b.Seq, b.Slot)
	}
	fams, err := decodeFamilies(b.Data)
	if err != nil || len(fams) != 1 || fams[0].Metric[0].Counter.GetValue() != 1 {
		t.Fatalf("decoded %v, %v; want c_total 1", fams, err)
	}
}

func TestWorkerCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	stats := WorkerStats{Requests: 7, InFlight: 2, Connections: 3, Accepted: 11, Queued: 4, Backlog: 128, HasQueue: true}
	old := prometheus.DefaultRegisterer
	prometheus.DefaultRegisterer = reg
	defer func() { prometheus.DefaultRegisterer = old }()
	if err := RegisterWorker(func() WorkerStats { return stats }); err != nil {
		t.Fatal(err)
	}
	// Twice is fine (one per process); a clash with the application's
	// own metric of that name is an error, not a panic.
	if err := RegisterWorker(func() WorkerStats { return stats }); err != nil {
		t.Fatalf("second registration: %v", err)
	}
	clash := prometheus.NewRegistry()
	clash.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "brood_http_connections", Help: "mine"}))
	prometheus.DefaultRegisterer = clash
	if err := RegisterWorker(func() WorkerStats { return stats }); err == nil {
		t.Error("registering over the application's brood_http_connections: no error")
	}
	prometheus.DefaultRegisterer = reg
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := samples(t, fams)
	for name, want := range map[string]float64{
		"brood_http_requests_total": 7, "brood_http_requests_in_flight": 2, "brood_http_connections": 3,
		"brood_http_connections_accepted_total": 11,
		"brood_accept_queue_length":             4, "brood_accept_queue_backlog": 128,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
}

func TestJobsCollector(t *testing.T) {
	jobDuration.Reset() // a package-level vector: what an earlier run (-count) observed stays
	reg := prometheus.NewRegistry()
	old := prometheus.DefaultRegisterer
	prometheus.DefaultRegisterer = reg
	defer func() { prometheus.DefaultRegisterer = old }()
	if err := RegisterJobs(func() []schedule.JobStatus {
		return []schedule.JobStatus{{Name: "cleanup", Runs: 5, Failures: 1, Skipped: 2, LastDuration: 1500 * time.Millisecond, Running: true}}
	}); err != nil {
		t.Fatal(err)
	}
	ObserveJob("cleanup", 30*time.Millisecond, nil)
	ObserveJob("cleanup", 2*time.Second, errors.New("disk full"))
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := samples(t, fams)
	for name, want := range map[string]float64{
		`brood_agent_job_duration_seconds_count{job="cleanup",result="ok"}`:    1,
		`brood_agent_job_duration_seconds_count{job="cleanup",result="error"}`: 1,
		`brood_agent_job_duration_seconds_sum{job="cleanup",result="error"}`:   2,
		`brood_agent_job_runs_total{job="cleanup"}`:                            5, `brood_agent_job_failures_total{job="cleanup"}`: 1,
		`brood_agent_job_skipped_total{job="cleanup"}`: 2, `brood_agent_job_last_duration_seconds{job="cleanup"}`: 1.5,
		`brood_agent_job_running{job="cleanup"}`: 1,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
}

// TestStateFileCarriesToTheNextAggregator: what one agent's aggregator
// carried for a replaced worker, the next one restores.
func TestStateFileCarriesToTheNextAggregator(t *testing.T) {
	file := t.TempDir() + "/state"
	cfg := AggregatorConfig{StateFile: file, Gatherer: prometheus.NewRegistry(), Timeout: time.Second}
	first := StartAggregator(messenger.New(messenger.Config{}), cfg)
	w := newFakePeers().add(10, "1")
	w.count.Add(7)
	rep, _ := w.report()
	if err := first.record(rep, 10); err != nil {
		t.Fatal(err)
	}
	first.mu.Lock()
	first.m.Retire("1", 10)
	first.mu.Unlock()
	first.Stop()

	next := StartAggregator(messenger.New(messenger.Config{}), cfg)
	defer next.Stop()
	w2 := newFakePeers().add(20, "1")
	w2.count.Add(2)
	rep, _ = w2.report()
	if err := next.record(rep, 20); err != nil {
		t.Fatal(err)
	}
	fams, err := next.Gather(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	if got := samples(t, fams)["req_total"]; got != 9 {
		t.Fatalf("req_total = %v in the next aggregator, want 9 (7 carried + 2)", got)
	}
}

// TestANextAgentUnderTheSamePIDCountsItsOwn: an agent restarted under
// its predecessor's pid (both here are this test's process) shows its own
// counts at once, added to the predecessor's, though its seqs start over.
func TestANextAgentUnderTheSamePIDCountsItsOwn(t *testing.T) {
	file := t.TempDir() + "/state"
	own := func(v float64) AggregatorConfig {
		reg := prometheus.NewRegistry()
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: "own_total", Help: "h"})
		c.Add(v)
		reg.MustRegister(c)
		return AggregatorConfig{StateFile: file, Gatherer: reg, Timeout: time.Second}
	}
	first := StartAggregator(messenger.New(messenger.Config{}), own(5))
	for range 3 {
		if _, err := first.Gather(t.Context(), false); err != nil {
			t.Fatal(err)
		}
	}
	first.Stop()
	next := StartAggregator(messenger.New(messenger.Config{}), own(1))
	defer next.Stop()
	fams, err := next.Gather(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	if got := samples(t, fams)["own_total"]; got != 6 {
		t.Fatalf("own_total = %v in the next agent, want 5 carried + 1", got)
	}
}

func TestGatherAfterStopAnswersWithWhatIsKnown(t *testing.T) {
	p := newFakePeers()
	p.add(10, "0").count.Add(3)
	a := testAggregator(p, time.Second)
	if _, err := a.Gather(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	a.Stop()
	fams, err := a.Gather(t.Context(), false)
	if err != nil || samples(t, fams)["req_total"] != 3 {
		t.Fatalf("after Stop: %v, %v; want req_total 3", samples(t, fams), err)
	}
}

// TestReportsWithUnchangedFamilies: families a report repeats byte for
// byte keep their values, gauges included, while the others move on.
func TestReportsWithUnchangedFamilies(t *testing.T) {
	a := testAggregator(newFakePeers(), time.Second)
	defer a.Stop()
	clock := time.Unix(1000, 0)
	a.now = func() time.Time { return clock } // the reports are as fresh as the scrape
	w := newFakePeers().add(10, "1")
	still := prometheus.NewCounter(prometheus.CounterOpts{Name: "still_total", Help: "h"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "level", Help: "h"})
	w.reg.MustRegister(still, g)
	still.Add(5)
	g.Set(3)
	for i := range 3 {
		w.count.Add(1)
		rep, err := w.report()
		if err != nil {
			t.Fatal(err)
		}
		if err := a.record(rep, 10); err != nil {
			t.Fatal(err)
		}
		// A stale copy of the report changes nothing.
		if err := a.record(rep, 10); err != nil {
			t.Fatal(err)
		}
		fams, _ := a.Gather(t.Context(), false)
		got := samples(t, fams)
		if got["req_total"] != float64(i+1) || got["still_total"] != 5 || got["level"] != 3 {
			t.Fatalf("report %d: req_total %v still_total %v level %v, want %d, 5, 3", i+1, got["req_total"], got["still_total"], got["level"], i+1)
		}
	}
}

// TestRestoredPIDsAreNotRetiredAtOnce: a new agent that scrapes before it
// knows the membership must not retire the workers it restored: their
// later reports would be ignored.
func TestRestoredPIDsAreNotRetiredAtOnce(t *testing.T) {
	file := t.TempDir() + "/state"
	clock := time.Unix(1000, 0)
	cfg := AggregatorConfig{StateFile: file, Gatherer: prometheus.NewRegistry(), Timeout: time.Second}
	first := StartAggregator(messenger.New(messenger.Config{}), cfg)
	first.now = func() time.Time { return clock }
	w := newFakePeers().add(10, "1")
	w.count.Add(7)
	rep, _ := w.report()
	if err := first.record(rep, 10); err != nil {
		t.Fatal(err)
	}
	first.Stop()

	clock = clock.Add(10 * time.Second) // the old agent saved long before it died
	p := newFakePeers()                 // a membership not announced yet
	next := newAggregator(p, cfg)
	next.now = func() time.Time { return clock }
	next.stateFile = file
	next.loadState()
	defer next.Stop()
	if _, err := next.Gather(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.workers[10], p.order = w, []int{10} // now it is known, and live
	p.mu.Unlock()
	clock = clock.Add(time.Second)
	w.count.Add(3)
	fams, err := next.Gather(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	if got := samples(t, fams)["req_total"]; got != 10 {
		t.Fatalf("req_total = %v, want 10: the restored worker's new report was ignored", got)
	}
}

// TestAFailedSaveIsTriedAgain: a state file that could not be written is
// written at the next tick, though nothing changed meanwhile.
func TestAFailedSaveIsTriedAgain(t *testing.T) {
	dir := t.TempDir() + "/later"
	a := testAggregator(newFakePeers(), time.Second)
	defer a.Stop()
	a.stateFile = dir + "/state"
	w := newFakePeers().add(10, "1")
	w.count.Add(7)
	rep, _ := w.report()
	if err := a.record(rep, 10); err != nil {
		t.Fatal(err)
	}
	a.saveState(false) // the directory is missing: fails
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	a.saveState(false)
	if _, err := os.Stat(a.stateFile); err != nil {
		t.Fatalf("the state was not saved again after a failed save: %v", err)
	}
}
