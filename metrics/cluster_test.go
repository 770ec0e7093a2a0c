package metrics_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/broodhq/brood/agent"
	"github.com/broodhq/brood/app"
	"github.com/broodhq/brood/framework"
	ct "github.com/broodhq/brood/internal/clustertest"
	"github.com/broodhq/brood/metrics"
)

var testApps = map[string]func() error{
	"metrics": func() error {
		work := promauto.NewCounter(prometheus.CounterOpts{Name: "app_work_total", Help: "Work requests served."})
		took := promauto.NewHistogram(prometheus.HistogramOpts{Name: "app_work_seconds", Help: "Work request latency.", Buckets: prometheus.DefBuckets})
		r := chi.NewRouter()
		r.Post("/work", func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			work.Inc()
			took.Observe(time.Since(start).Seconds())
			fmt.Fprint(w, "ok")
		})
		r.Get("/pid", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%d %d", os.Getpid(), app.FromContext(r.Context()).Slot())
		})
		r.Handle("/metrics", metrics.Handler())
		return framework.Run(r, framework.WithAgent(func(a *agent.Agent) error {
			a.Every(50*time.Millisecond, "tick", func(context.Context) error { return nil })
			return nil
		}))
	},
}

func TestMain(m *testing.M) { ct.Main(m, testApps) }

// freeAddr returns a loopback address nothing listens on (now).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type cluster struct {
	*ct.Cluster
	metricsURL string
}

func start(t *testing.T, workers int, env ...string) *cluster {
	t.Helper()
	addr := freeAddr(t)
	env = append([]string{"BROOD_ADDR=127.0.0.1:0", fmt.Sprintf("BROOD_WORKERS=%d", workers), "BROOD_METRICS_ADDR=" + addr}, env...)
	c := ct.Start(t, "metrics", env...)
	c.WaitReady(30 * time.Second)
	if _, _, err := c.WaitLog(10*time.Second, 0, ct.Msg("serving cluster metrics")); err != nil {
		t.Fatalf("metrics listener: %v", err)
	}
	return &cluster{Cluster: c, metricsURL: "http://" + addr}
}

// hit sends n POST /work requests on fresh connections, so the kernel
// spreads them over the workers, and fails the test if any fails.
func (c *cluster) hit(t *testing.T, n int) {
	t.Helper()
	var next atomic.Int64
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			tr := &http.Transport{DisableKeepAlives: true}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for next.Add(1) <= int64(n) {
				res, err := cl.Post(c.URL("/work"), "text/plain", nil)
				if err == nil {
					_, err = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if err == nil && res.StatusCode != 200 {
						err = fmt.Errorf("status %d", res.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d requests failed; first: %v", f, n, firstErr.Load())
	}
}

// scrape fetches url with the Accept header given and returns the body,
// the families it decodes to, and how long it took.
func scrape(t *testing.T, url, accept string) ([]byte, map[string]*dto.MetricFamily, time.Duration) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	start := time.Now()
	res, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	took := time.Since(start)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("scrape %s: status %d, %v\n%s", url, res.StatusCode, err, body)
	}
	fams := map[string]*dto.MetricFamily{}
	// By its Content-Type: older expfmt releases do not recognise the
	// escaping parameter promhttp adds to it.
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/openmetrics-text") {
		return body, fams, took // expfmt decodes no OpenMetrics
	}
	dec := expfmt.NewDecoder(bytes.NewReader(body), expfmt.ResponseFormat(res.Header))
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err != nil {
			if err == io.EOF {
				break
			}
			t.Fatalf("scrape %s: decode %s: %v", url, expfmt.ResponseFormat(res.Header), err)
		}
		fams[mf.GetName()] = mf
	}
	return body, fams, took
}

func counterValue(t *testing.T, fams map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	mf := fams[name]
	if mf == nil || len(mf.Metric) != 1 {
		t.Fatalf("%s: %v, want one series", name, mf)
	}
	return mf.Metric[0].GetCounter().GetValue()
}

func histCount(t *testing.T, fams map[string]*dto.MetricFamily, name string) uint64 {
	t.Helper()
	mf := fams[name]
	if mf == nil || len(mf.Metric) != 1 {
		t.Fatalf("%s: %v, want one series", name, mf)
	}
	return mf.Metric[0].GetHistogram().GetSampleCount()
}

// slotUp returns brood_scrape_slot_up by slot.
func slotUp(fams map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, m := range fams["brood_scrape_slot_up"].GetMetric() {
		for _, l := range m.Label {
			if l.GetName() == "slot" {
				out[l.GetValue()] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

func workerPIDs(t *testing.T, c *cluster) map[string]int {
	t.Helper()
	_, fams, _ := scrape(t, c.metricsURL+"/metrics/slots", "")
	// process_start_time_seconds per slot does not give pids; ask /pid
	// until every slot has answered.
	want := len(slotUp(fams)) - 1 // all but the agent
	out := map[string]int{}
	cl := ct.Client(5 * time.Second)
	for i := 0; i < 500 && len(out) < want; i++ {
		tr := &http.Transport{DisableKeepAlives: true}
		cl.Transport = tr
		_, body, err := ct.Get(cl, c.URL("/pid"))
		if err != nil {
			t.Fatal(err)
		}
		var pid, slot int
		fmt.Sscan(body, &pid, &slot)
		out[fmt.Sprint(slot)] = pid
	}
	if len(out) < want {
		t.Fatalf("found pids of slots %v, want %d slots", out, want)
	}
	return out
}

// TestCountsAreExactAcrossWorkersAndAKill: 10,000 requests over three
// workers scrape as exactly 10,000; a worker SIGKILLed one report interval
// after more load loses nothing, because its periodic report carried it.
func TestCountsAreExactAcrossWorkersAndAKill(t *testing.T) {
	c := start(t, 3)
	c.hit(t, 10_000)

	body, fams, _ := scrape(t, c.metricsURL+"/metrics", "")
	if got := counterValue(t, fams, "app_work_total"); got != 10_000 {
		t.Fatalf("app_work_total = %v after 10,000 requests, want 10000", got)
	}
	if got := histCount(t, fams, "app_work_seconds"); got != 10_000 {
		t.Fatalf("app_work_seconds_count = %v, want 10000", got)
	}
	if got := counterValue(t, fams, "brood_http_requests_total"); got < 10_000 {
		t.Errorf("brood_http_requests_total = %v, want at least 10000", got)
	}
	checkPromtool(t, body)
	slotBody, slots, _ := scrape(t, c.metricsURL+"/metrics/slots", "")
	checkPromtool(t, slotBody)
	up := slotUp(slots)
	if len(up) != 4 {
		t.Fatalf("slot_up %v, want 3 workers and the agent", up)
	}
	for _, m := range slots["app_work_total"].GetMetric() {
		if m.Label[0].GetValue() != metrics.AgentSlot && m.GetCounter().GetValue() == 0 {
			t.Errorf("a slot served none of 10,000 requests: %v", slots["app_work_total"])
		}
	}

	for _, name := range []string{"brood_agent_job_runs_total", "brood_agent_job_duration_seconds"} {
		mf := fams[name]
		if mf == nil || len(mf.Metric) != 1 || mf.Metric[0].Label[0].GetValue() != "tick" {
			t.Errorf("%s: %v, want one series for the agent's job tick", name, mf)
		}
	}
	if n := len(slots["brood_accept_queue_backlog"].GetMetric()); n != 3 {
		t.Errorf("brood_accept_queue_backlog has %d series in the per-slot view, want one per worker: %v", n, slots["brood_accept_queue_backlog"])
	}

	// 2,000 more, seen only by the periodic reports; then a kill.
	c.hit(t, 2_000)
	pids := workerPIDs(t, c)
	time.Sleep(metrics.ReportInterval + 500*time.Millisecond)
	var victim int
	for _, pid := range pids {
		victim = pid
		break
	}
	mark := c.Lines()
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.WaitLog(30*time.Second, mark, ct.Msg("replacement ready")); err != nil {
		t.Fatalf("killed worker %d not replaced: %v", victim, err)
	}
	c.hit(t, 3_000)
	_, fams, _ = scrape(t, c.metricsURL+"/metrics", "")
	if got := counterValue(t, fams, "app_work_total"); got != 15_000 {
		t.Fatalf("app_work_total = %v after 15,000 requests and a SIGKILL, want 15000", got)
	}
	if got := histCount(t, fams, "app_work_seconds"); got != 15_000 {
		t.Fatalf("app_work_seconds_count = %v, want 15000", got)
	}

	// The router's handler serves the same view, in every format.
	for _, accept := range []string{"", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited", "application/openmetrics-text;version=1.0.0"} {
		body, fams, _ := scrape(t, c.URL("/metrics"), accept)
		if strings.HasPrefix(accept, "application/openmetrics") {
			if !bytes.Contains(body, []byte("app_work_total 15000")) {
				t.Errorf("OpenMetrics from the router lacks app_work_total 15000:\n%.2000s", body)
			}
			continue
		}
		if got := counterValue(t, fams, "app_work_total"); got != 15_000 {
			t.Errorf("router /metrics (%q): app_work_total = %v, want 15000", accept, got)
		}
	}
}

// TestAStoppedWorkerIsMarkedDownInTime: a SIGSTOPped worker cannot answer;
// concurrent scrapes still answer within the deadline, with its slot down
// and its last counts kept.
func TestAStoppedWorkerIsMarkedDownInTime(t *testing.T) {
	c := start(t, 2)
	c.hit(t, 1_000)
	// A scrape that sees all 1,000 leaves every worker's report with the
	// agent: the stopped worker's is then its last one.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, fams, _ := scrape(t, c.metricsURL+"/metrics", "")
		if counterValue(t, fams, "app_work_total") == 1_000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the scrape never showed the 1,000 requests")
		}
	}
	pids := workerPIDs(t, c)
	var slot string
	var victim int
	for s, pid := range pids {
		slot, victim = s, pid
		break
	}
	if err := syscall.Kill(victim, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	cont := sync.OnceFunc(func() { syscall.Kill(victim, syscall.SIGCONT) })
	t.Cleanup(cont)

	var wg sync.WaitGroup
	type result struct {
		fams map[string]*dto.MetricFamily
		took time.Duration
	}
	results := make([]result, 3)
	for i := range results {
		wg.Go(func() {
			_, fams, took := scrape(t, c.metricsURL+"/metrics", "")
			results[i] = result{fams, took}
		})
	}
	wg.Wait()
	for _, r := range results {
		// DefaultScrapeTimeout, plus room for a loaded machine.
		if limit := metrics.DefaultScrapeTimeout + 3*time.Second; r.took > limit {
			t.Errorf("scrape with a stopped worker took %s, want under %s", r.took, limit)
		}
		if up := slotUp(r.fams); up[slot] != 0 || len(up) != 3 {
			t.Errorf("slot_up %v with slot %s stopped, want it 0", up, slot)
		}
		if got := counterValue(t, r.fams, "app_work_total"); got != 1_000 {
			t.Errorf("app_work_total = %v with a worker stopped, want 1000 (its last report kept)", got)
		}
	}
	cont()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, fams, _ := scrape(t, c.metricsURL+"/metrics", "")
		if slotUp(fams)[slot] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot %s still down 10s after SIGCONT", slot)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCountersNeverDecreaseAcrossARollingReload scrapes while a SIGHUP
// replaces every worker, and then the agent, under load. It scrapes
// through the router: the agent's own listener is down while the agent is
// replaced, whereas the router's handler waits for the new agent.
func TestCountersNeverDecreaseAcrossARollingReload(t *testing.T) {
	c := start(t, 2)
	load := ct.StartLoad(c.URL("/work"), 4, true, 60*time.Second)
	defer load.Stop()
	time.Sleep(300 * time.Millisecond)
	mark := c.Lines()
	c.Signal(syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.WaitLog(60*time.Second, mark, ct.Msg("reload complete"))
	}()
	var last float64
	scrapes := 0
	var until time.Time // a while after the reload, with the new agent
	for scrapes = 0; until.IsZero() || time.Now().Before(until); scrapes++ {
		select {
		case <-done:
			if until.IsZero() {
				until = time.Now().Add(1500 * time.Millisecond)
			}
		default:
		}
		_, fams, _ := scrape(t, c.URL("/metrics"), "")
		v := counterValue(t, fams, "app_work_total")
		if v < last {
			t.Fatalf("app_work_total went from %v to %v during a rolling reload", last, v)
		}
		last = v
		time.Sleep(50 * time.Millisecond)
	}
	load.Stop()
	if load.Failed.Load() > 0 {
		t.Logf("requests failed during the reload: %s", load.Errors())
	}
	// Drained workers sent their last report before exiting.
	_, fams, _ := scrape(t, c.URL("/metrics"), "")
	if got, want := counterValue(t, fams, "app_work_total"), float64(load.OK.Load()+load.Failed.Load()); got < float64(load.OK.Load()) || got > want {
		t.Fatalf("app_work_total = %v after the reload, want between %d answered and %v sent", got, load.OK.Load(), want)
	}
	t.Logf("%d scrapes during the reload, %d requests", scrapes, load.OK.Load())
}

// checkPromtool runs promtool check metrics on a text exposition.
func checkPromtool(t *testing.T, body []byte) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("BROOD_CI_REQUIRE_TOOLS") == "1" {
			t.Fatal("promtool not found (Debian package prometheus) and BROOD_CI_REQUIRE_TOOLS=1")
		}
		t.Log("promtool not found: install the Debian package prometheus to check the output")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestCountersSurviveAnAgentKill: what the agent carries for a replaced
// worker survives the agent itself being killed and restarted.
func TestCountersSurviveAnAgentKill(t *testing.T) {
	c := start(t, 2)
	c.hit(t, 2_000)
	pids := workerPIDs(t, c)
	mark := c.Lines()
	if err := syscall.Kill(pids["1"], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.WaitLog(30*time.Second, mark, ct.Msg("replacement ready")); err != nil {
		t.Fatalf("killed worker not replaced: %v", err)
	}
	c.hit(t, 1_000)
	_, fams, _ := scrape(t, c.metricsURL+"/metrics", "")
	if got := counterValue(t, fams, "app_work_total"); got != 3_000 {
		t.Fatalf("app_work_total = %v after a worker kill, want 3000", got)
	}
	time.Sleep(6 * time.Second) // the agent saves its state every 5s
	agentPID := 0
	for _, pid := range c.Children() {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.HasSuffix(strings.SplitN(string(cmdline), "\x00", 2)[0], ": agent") {
			agentPID = pid
		}
	}
	if agentPID == 0 {
		t.Fatal("no agent among the master's children")
	}
	mark = c.Lines()
	if err := syscall.Kill(agentPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.WaitLog(30*time.Second, mark, ct.Msg("serving cluster metrics")); err != nil {
		t.Fatalf("the new agent does not serve metrics: %v", err)
	}
	_, fams, _ = scrape(t, c.metricsURL+"/metrics", "")
	if got := counterValue(t, fams, "app_work_total"); got != 3_000 {
		t.Fatalf("app_work_total = %v after the agent was killed, want 3000", got)
	}
	c.hit(t, 1_000)
	_, fams, _ = scrape(t, c.metricsURL+"/metrics", "")
	if got := counterValue(t, fams, "app_work_total"); got != 4_000 {
		t.Fatalf("app_work_total = %v, want 4000", got)
	}
}

// In a real cluster with balance shared, each worker reports the shared
// socket's queue, and /metrics shows it once: the largest of the slots'
// values, which all see the same socket. With hash there is no such socket.
func TestSharedQueueInACluster(t *testing.T) {
	c := start(t, 3, "BROOD_BALANCE=shared")
	c.hit(t, 30)
	_, slots, _ := scrape(t, c.metricsURL+"/metrics/slots", "")
	per := slots["brood_accept_queue_shared_backlog"].GetMetric()
	if len(per) != 3 {
		t.Fatalf("brood_accept_queue_shared_backlog has %d series in the per-slot view, want one per worker: %v", len(per), per)
	}
	backlog := per[0].GetGauge().GetValue()
	if backlog <= 0 {
		t.Fatalf("the shared socket's backlog is %v; want the kernel's bound", backlog)
	}
	_, fams, _ := scrape(t, c.metricsURL+"/metrics", "")
	got := fams["brood_accept_queue_shared_backlog"].GetMetric()
	if len(got) != 1 || got[0].GetGauge().GetValue() != backlog {
		t.Errorf("/metrics: brood_accept_queue_shared_backlog %v; want one series of %v (the socket once, not once per worker)", got, backlog)
	}
	if fams["brood_accept_queue_shared_length"] == nil {
		t.Error("/metrics has no brood_accept_queue_shared_length")
	}

	h := start(t, 2)
	_, fams, _ = scrape(t, h.metricsURL+"/metrics", "")
	if mf := fams["brood_accept_queue_shared_length"]; mf != nil {
		t.Errorf("balance hash: %v; want no shared queue gauges", mf)
	}
}
