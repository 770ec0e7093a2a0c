package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// linkAgent stands in for the messenger on both sides of one Reporter: the
// worker's calls to the agent (AgentPID, CallAgent) and the agent's calls
// to the worker (AppPIDs, Call) reach a real Aggregator and the Reporter,
// each message through JSON as the messenger carries it.
type linkAgent struct {
	pid int // the worker's

	mu       sync.Mutex
	a        *Aggregator
	r        *Reporter
	agentPID int  // 0: no agent (it restarts)
	older    bool // an agent before deltas: it never says what it holds
	fail     int  // this many next reports fail, as if the agent were gone
	before   func()
	sent     []report // the reports, as the agent received them
	answers  []report // the gathers' answers, likewise
}

func newLinkAgent(t *testing.T, reg prometheus.Gatherer) *linkAgent {
	l := &linkAgent{pid: 10, agentPID: 1}
	l.a = testAggregator(l, time.Second)
	t.Cleanup(func() { l.agent().Stop() })
	l.r = newReporter(l, "0", reg, nil)
	return l
}

func (l *linkAgent) agent() *Aggregator {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.a
}

// restartAgent replaces the agent with one that holds no report.
func (l *linkAgent) restartAgent() {
	old := l.agent()
	old.Stop()
	l.mu.Lock()
	l.a = testAggregator(l, time.Second)
	l.mu.Unlock()
}

func (l *linkAgent) AgentPID() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.agentPID
}

func (l *linkAgent) CallAgent(_ context.Context, action string, data, reply any) error {
	if action != actionReport {
		return fmt.Errorf("unexpected action %q", action)
	}
	var rep report
	if err := viaJSON(data, &rep); err != nil {
		return err
	}
	l.mu.Lock()
	l.sent = append(l.sent, rep)
	a, older, before := l.a, l.older, l.before
	l.before = nil
	failing := l.fail > 0
	if failing {
		l.fail--
	}
	l.mu.Unlock()
	if failing {
		return errors.New("agent gone")
	}
	if before != nil {
		before()
	}
	if older {
		// An agent before deltas merges a whole report, and answers
		// nothing.
		if err := a.record(rep, l.pid); err != nil {
			return err
		}
		return viaJSON(nil, reply)
	}
	h, err := a.report(rep, l.pid)
	if err != nil {
		return err
	}
	return viaJSON(h, reply)
}

func (l *linkAgent) AppPIDs() []int { return []int{l.pid} }

func (l *linkAgent) Call(_ context.Context, pid int, action string, data, reply any) error {
	if action != actionGather || pid != l.pid {
		return fmt.Errorf("unexpected call %q to pid %d", action, pid)
	}
	var h holding
	if err := viaJSON(data, &h); err != nil {
		return err
	}
	l.mu.Lock()
	if l.older {
		h = holding{} // it sent no holding at all
	}
	l.mu.Unlock()
	rep, err := l.r.gather(h)
	if err != nil {
		return err
	}
	if err := viaJSON(rep, reply); err != nil {
		return err
	}
	l.mu.Lock()
	l.answers = append(l.answers, *reply.(*report))
	l.mu.Unlock()
	return nil
}

func viaJSON(data, v any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// reports returns the reports the agent received since the n first.
func (l *linkAgent) reports(n int) []report {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]report(nil), l.sent[n:]...)
}

func (l *linkAgent) numReports() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sent)
}

// merged returns what the agent holds of name, without asking the worker
// (a scrape would gather a fresh report, and hide a report that was lost).
func (l *linkAgent) merged(t *testing.T, name string) float64 {
	t.Helper()
	a := l.agent()
	a.mu.Lock()
	fams := a.m.Cluster(time.Time{})
	a.mu.Unlock()
	return samples(t, fams)[name]
}

// send is one periodic report; it returns the calls it made.
func (l *linkAgent) send(t *testing.T) []report {
	t.Helper()
	n := l.numReports()
	if err := l.r.send(t.Context(), time.Second, false); err != nil {
		t.Fatalf("send: %v", err)
	}
	return l.reports(n)
}

func bases(reps []report) []uint64 {
	var out []uint64
	for _, rep := range reps {
		out = append(out, rep.Base)
	}
	return out
}

// TestARefusedDeltaIsSentAgainWhole: a periodic delta against a report the
// agent does not hold (it restarted, or the answer to a scrape's gather
// was lost) is refused; the worker sends once more, whole (the report the
// agent holds is no longer kept), and the agent's values are exact.
func TestARefusedDeltaIsSentAgainWhole(t *testing.T) {
	for _, c := range []struct {
		name string
		lose func(*testing.T, *linkAgent)
	}{
		{"agent restarted", func(_ *testing.T, l *linkAgent) { l.restartAgent() }},
		{"gather answer lost", func(t *testing.T, l *linkAgent) {
			// The worker made a report the agent never got.
			if _, err := l.r.gather(l.agent().holds(l.pid)); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg, cs := counterVec("x_total", 3)
			l := newLinkAgent(t, reg)
			want := 0.0
			for i := range 3 {
				cs[0].Add(2)
				want += 2
				reps := l.send(t)
				if len(reps) != 1 || (i > 0) != (reps[0].Base != 0) {
					t.Fatalf("report %d: bases %v, want one report, a delta after the first", i, bases(reps))
				}
			}
			c.lose(t, l)
			cs[0].Add(5)
			want += 5
			reps := l.send(t)
			if len(reps) != 2 || reps[0].Base == 0 || reps[1].Base != 0 {
				t.Fatalf("a refused delta: bases %v, want a delta then one whole report", bases(reps))
			}
			if got := l.merged(t, `x_total{key="k0"}`); got != want {
				t.Fatalf("after the retry the agent holds x_total %v, want %v", got, want)
			}
			// And the next report is a delta again, against the whole one.
			cs[0].Add(1)
			want++
			reps = l.send(t)
			if len(reps) != 1 || reps[0].Base == 0 {
				t.Fatalf("the report after a retry: bases %v, want one delta", bases(reps))
			}
			if got := l.merged(t, `x_total{key="k0"}`); got != want {
				t.Fatalf("x_total %v, want %v", got, want)
			}
		})
	}
}

// TestAReportOvertakenByAGatherIsNotSentAgain: a periodic delta that
// crosses a scrape's gather is refused (the agent took the gather's newer
// report), and not sent again: the agent holds newer values.
func TestAReportOvertakenByAGatherIsNotSentAgain(t *testing.T) {
	reg, cs := counterVec("x_total", 3)
	l := newLinkAgent(t, reg)
	cs[0].Add(1)
	l.send(t)
	cs[0].Add(2)
	l.mu.Lock()
	l.before = func() {
		cs[0].Add(4) // counted by the gather only
		if _, err := l.agent().Gather(t.Context(), false); err != nil {
			t.Error(err)
		}
	}
	l.mu.Unlock()
	reps := l.send(t)
	if len(reps) != 1 || reps[0].Base == 0 {
		t.Fatalf("bases %v, want one delta, not sent again", bases(reps))
	}
	if got := l.merged(t, `x_total{key="k0"}`); got != 7 {
		t.Fatalf("x_total %v, want the gather's 7", got)
	}
}

// TestAnOlderAgentIsSentWholeReports: an agent that never says what it
// holds (gathers without a holding, reports answered with nothing) gets
// every report whole, periodic or gathered, and its values are exact.
func TestAnOlderAgentIsSentWholeReports(t *testing.T) {
	reg, cs := counterVec("x_total", 3)
	l := newLinkAgent(t, reg)
	l.older = true
	want := 0.0
	for i := range 6 {
		cs[i%3].Add(float64(i + 1))
		want += float64(i + 1)
		if i%2 == 0 {
			if reps := l.send(t); len(reps) != 1 || reps[0].Base != 0 {
				t.Fatalf("report %d: bases %v, want one whole report", i, bases(reps))
			}
		} else if _, err := l.agent().Gather(t.Context(), false); err != nil {
			t.Fatal(err)
		}
		got := l.merged(t, `x_total{key="k0"}`) + l.merged(t, `x_total{key="k1"}`) + l.merged(t, `x_total{key="k2"}`)
		if got != want {
			t.Fatalf("round %d: x_total sums to %v, want %v", i, got, want)
		}
	}
	for _, rep := range l.answers {
		if rep.Base != 0 {
			t.Fatalf("a gather of an older agent answered with a delta against %d", rep.Base)
		}
	}
}

// TestAGatherThatHoldsThisRunTurnsOnDeltas: once an agent asks a gather
// saying it holds one of this run's reports, periodic reports are deltas,
// the first one included (scrapes came before it).
func TestAGatherThatHoldsThisRunTurnsOnDeltas(t *testing.T) {
	reg, cs := counterVec("x_total", 3)
	l := newLinkAgent(t, reg)
	for range 2 { // the second holds the first's report
		if _, err := l.agent().Gather(t.Context(), false); err != nil {
			t.Fatal(err)
		}
	}
	cs[1].Add(3)
	if reps := l.send(t); len(reps) != 1 || reps[0].Base == 0 {
		t.Fatalf("the first periodic report after gathers: bases %v, want one delta", bases(reps))
	}
	if got := l.merged(t, `x_total{key="k1"}`); got != 3 {
		t.Fatalf("x_total %v, want 3", got)
	}
}

// TestAFailedReportIsFollowedByAWholeOne: after a report that failed (the
// agent may be a new one), the next report is whole.
func TestAFailedReportIsFollowedByAWholeOne(t *testing.T) {
	reg, cs := counterVec("x_total", 3)
	l := newLinkAgent(t, reg)
	l.send(t)
	l.send(t)
	l.mu.Lock()
	l.fail = 1
	l.mu.Unlock()
	if err := l.r.send(t.Context(), time.Second, false); err == nil {
		t.Fatal("a report the agent failed: no error")
	}
	cs[2].Add(9)
	if reps := l.send(t); len(reps) != 1 || reps[0].Base != 0 {
		t.Fatalf("after a failed report: bases %v, want one whole report", bases(reps))
	}
	if got := l.merged(t, `x_total{key="k2"}`); got != 9 {
		t.Fatalf("x_total %v, want 9", got)
	}
}

// TestNoPeriodicReportWhileTheAgentRestarts: with no agent, the periodic
// reports pause; they resume when there is one.
func TestNoPeriodicReportWhileTheAgentRestarts(t *testing.T) {
	reg, _ := counterVec("x_total", 1)
	l := newLinkAgent(t, reg)
	l.agentPID = 0
	l.r.start(t.Context(), 5*time.Millisecond)
	defer l.r.cancel()
	time.Sleep(60 * time.Millisecond)
	if n := l.numReports(); n != 0 {
		t.Fatalf("%d periodic reports with no agent, want none", n)
	}
	l.mu.Lock()
	l.agentPID = 1
	l.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for l.numReports() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d periodic reports 5 s after the agent came back, want 2", l.numReports())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestStopSendsAWholeLastReport: a stopping worker's last report is whole
// (it may be held for the next agent, which holds nothing), sent once
// however often Stop is called, and holds the last counts.
func TestStopSendsAWholeLastReport(t *testing.T) {
	reg, cs := counterVec("x_total", 1)
	l := newLinkAgent(t, reg)
	l.send(t)
	l.send(t) // deltas from now on
	l.r.start(t.Context(), time.Hour)
	cs[0].Add(6)
	n := l.numReports()
	l.r.Stop(t.Context())
	l.r.Stop(t.Context())
	reps := l.reports(n)
	if len(reps) != 1 || reps[0].Base != 0 {
		t.Fatalf("Stop twice: bases %v, want one whole report", bases(reps))
	}
	if got := l.merged(t, `x_total{key="k0"}`); got != 6 {
		t.Fatalf("x_total %v after the last report, want 6", got)
	}
}

// TestAReportKeepsWhatTheOtherCollectorsGathered: a collector's error
// leaves the others' families in the report; a gather with nothing but
// errors is no report.
func TestAReportKeepsWhatTheOtherCollectorsGathered(t *testing.T) {
	good, cs := counterVec("x_total", 1)
	cs[0].Add(2)
	bad := prometheus.NewRegistry()
	bad.MustRegister(failingCollector{prometheus.NewDesc("bad_total", "h", nil, nil)})
	r := newReporter(nil, "0", prometheus.Gatherers{good, bad}, nil)
	rep, err := r.snapshot(holding{})
	if err != nil {
		t.Fatalf("a gather with one failing collector: %v, want the others' report", err)
	}
	fams, err := decodeFamilies(rep.Data)
	if err != nil || len(fams) != 1 || fams[0].GetName() != "x_total" {
		t.Fatalf("decoded %v, %v; want x_total alone", fams, err)
	}
	r = newReporter(nil, "0", bad, nil)
	if _, err := r.snapshot(holding{}); err == nil {
		t.Fatal("a gather with nothing but an error: no error")
	}
}

type failingCollector struct{ d *prometheus.Desc }

func (c failingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.d }
func (c failingCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.NewInvalidMetric(c.d, errors.New("broken"))
}

// levels is a slog.Handler that counts records by level.
type levels struct {
	mu sync.Mutex
	n  map[slog.Level]int
}

func (h *levels) Enabled(context.Context, slog.Level) bool { return true }
func (h *levels) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == nil {
		h.n = map[slog.Level]int{}
	}
	h.n[r.Level]++
	return nil
}
func (h *levels) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *levels) WithGroup(string) slog.Handler      { return h }

func (h *levels) count(l slog.Level) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n[l]
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("5 s without %s", what)
		}
	}
}

// TestFailingReportsAreLoggedOnce: periodic reports that keep failing are
// one warning, not one per interval; the first that works again is one
// note.
func TestFailingReportsAreLoggedOnce(t *testing.T) {
	reg, _ := counterVec("x_total", 1)
	l := newLinkAgent(t, reg)
	logs := &levels{}
	l.r.log = slog.New(logs)
	l.fail = 1 << 30
	l.r.start(t.Context(), 2*time.Millisecond)
	defer l.r.cancel()
	waitFor(t, "5 failed reports", func() bool { return l.numReports() >= 5 })
	if n := logs.count(slog.LevelWarn); n != 1 {
		t.Fatalf("%d warnings for 5 failed reports, want 1", n)
	}
	l.mu.Lock()
	l.fail = 0
	l.mu.Unlock()
	n := l.numReports()
	waitFor(t, "3 reports that work", func() bool { return l.numReports() >= n+3 })
	if w, i := logs.count(slog.LevelWarn), logs.count(slog.LevelInfo); w != 1 || i != 1 {
		t.Fatalf("%d warnings and %d notes after the reports worked again, want 1 and 1", w, i)
	}
}

// TestAScrapedWorkerIsNotAlsoReportedPeriodically: gathers more often than
// the interval put the periodic report off, each time.
func TestAScrapedWorkerIsNotAlsoReportedPeriodically(t *testing.T) {
	reg, _ := counterVec("x_total", 1)
	l := newLinkAgent(t, reg)
	l.r.start(t.Context(), 300*time.Millisecond)
	defer l.r.cancel()
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if _, err := l.agent().Gather(t.Context(), false); err != nil {
			t.Fatal(err)
		}
	}
	// One, if a gather came late under load; without the gathers, five.
	if n := l.numReports(); n > 1 {
		t.Fatalf("%d periodic reports in 1.5 s of gathers every 10 ms (interval 300 ms), want none", n)
	}
}
