package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// deltaFams returns families for the delta tests: n counter series with
// values from vals, a gauge, and a histogram.
func deltaFams(t *testing.T, vals []float64, extra bool) []*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "d_total", Help: "h"}, []string{"key"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "d_gauge", Help: "h"})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "d_seconds", Help: "h"})
	reg.MustRegister(c, g, h)
	for i, v := range vals {
		c.WithLabelValues("k" + strconv.Itoa(i)).Add(v)
		h.Observe(v / 100)
	}
	g.Set(float64(len(vals)))
	if extra {
		reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "a_new_total", Help: "h"}))
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	// One registry per call: its creation times would differ every time.
	for _, mf := range fams {
		for _, m := range mf.Metric {
			if m.Counter != nil {
				m.Counter.CreatedTimestamp = nil
			}
			if m.Histogram != nil {
				m.Histogram.CreatedTimestamp = nil
			}
		}
	}
	return fams
}

func mustEncode(t *testing.T, fams []*dto.MetricFamily) *encoded {
	t.Helper()
	e, err := encodeEach(nil, fams)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestDeltaRebuildsTheReport: whatever changed between two reports (values,
// series added, families added or gone), the delta rebuilds the new one
// byte for byte, says which families are the base's unchanged, and is
// small when only values moved.
func TestDeltaRebuildsTheReport(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	vals := make([]float64, 500)
	for i := range vals {
		vals[i] = float64(i)
	}
	cases := []struct {
		name  string
		next  func() ([]float64, bool)
		small bool // the delta is under a tenth of the whole
	}{
		{"nothing", func() ([]float64, bool) { return vals, false }, true},
		{"every value moved", func() ([]float64, bool) {
			v := append([]float64(nil), vals...)
			for i := range v {
				v[i] += 1 + float64(rnd.IntN(3))
			}
			return v, false
		}, false},
		{"one value moved", func() ([]float64, bool) {
			v := append([]float64(nil), vals...)
			v[250] += 0.5
			return v, false
		}, true},
		{"series added", func() ([]float64, bool) { return append(append([]float64(nil), vals...), 1, 2, 3), false }, false},
		{"series gone", func() ([]float64, bool) { return vals[:400], false }, false},
		{"family added", func() ([]float64, bool) { return vals, true }, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := mustEncode(t, deltaFams(t, vals, false))
			v, extra := c.next()
			next := mustEncode(t, deltaFams(t, v, extra))
			d := appendDelta(nil, base, next)
			chunks, from, err := applyDelta(base.chunks, d)
			if err != nil {
				t.Fatal(err)
			}
			if len(chunks) != len(next.chunks) {
				t.Fatalf("%d families rebuilt, want %d", len(chunks), len(next.chunks))
			}
			for i := range chunks {
				if !bytes.Equal(chunks[i], next.chunks[i]) {
					t.Fatalf("family %s rebuilt differs", next.names[i])
				}
				if j := from[i]; j >= 0 && (base.names[j] != next.names[i] || !bytes.Equal(base.chunks[j], next.chunks[i])) {
					t.Fatalf("family %s said unchanged from the base's %s, and is not", next.names[i], base.names[j])
				}
			}
			if c.small && len(d)*10 > len(next.buf) {
				t.Fatalf("delta of %d bytes for a report of %d", len(d), len(next.buf))
			}
			if c.name == "every value moved" && len(d)*2 > len(next.buf) {
				t.Fatalf("delta of %d bytes when only values moved, for a report of %d", len(d), len(next.buf))
			}
		})
	}
}

// TestMalformedDeltasFail: a truncated or corrupted delta is an error,
// never a panic or a wrong family that decodes.
func TestMalformedDeltasFail(t *testing.T) {
	vals := []float64{1, 2, 3, 4, 5, 6, 7, 8}
	base := mustEncode(t, deltaFams(t, vals, false))
	vals[3] = 40
	d := appendDelta(nil, base, mustEncode(t, deltaFams(t, vals, true)))
	for n := range len(d) {
		chunks, _, err := applyDelta(base.chunks, d[:n])
		if err == nil {
			// A cut between entries is a shorter, valid report.
			for _, c := range chunks {
				if _, derr := decodeFamily(c); derr != nil {
					t.Fatalf("cut at %d: no error, and a family that does not decode: %v", n, derr)
				}
			}
		}
	}
	for _, bad := range [][]byte{{9}, {deltaSame, 200}, {deltaWhole, 0xff, 0xff, 0x7f}, {deltaPatch, 0, 1, 0xff, 0x7f, 1, 0}} {
		if _, _, err := applyDelta(base.chunks, bad); err == nil {
			t.Fatalf("delta %v: no error", bad)
		}
	}
}

// jsonPeers reaches real Reporters, each report through JSON as the
// messenger carries it (so nothing the agent keeps aliases the worker's
// buffers).
type jsonPeers struct {
	mu       sync.Mutex
	regs     map[int]*Reporter
	order    []int
	deltas   int         // replies that were deltas
	deltasOf map[int]int // by pid
	bytes    int         // of the replies' Data
	lie      int         // this many next calls claim the agent holds the oldest kept report
}

func (p *jsonPeers) add(pid int, slot string, g prometheus.Gatherer) *Reporter {
	r := &Reporter{slot: slot, g: g, runID: newRun()}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.regs == nil {
		p.regs = map[int]*Reporter{}
	}
	if p.regs[pid] == nil {
		p.order = append(p.order, pid)
	}
	p.regs[pid] = r
	return r
}

func (p *jsonPeers) remove(pid int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.regs, pid)
	for i, q := range p.order {
		if q == pid {
			p.order = append(p.order[:i], p.order[i+1:]...)
			break
		}
	}
}

func (p *jsonPeers) AppPIDs() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int(nil), p.order...)
}

func (p *jsonPeers) Call(_ context.Context, pid int, action string, data, reply any) error {
	if action != actionGather {
		return fmt.Errorf("unexpected action %q", action)
	}
	p.mu.Lock()
	r := p.regs[pid]
	lie := p.lie > 0
	if lie {
		p.lie--
	}
	p.mu.Unlock()
	if r == nil {
		return fmt.Errorf("pid %d: gone", pid)
	}
	b, _ := json.Marshal(data)
	var h holding
	if err := json.Unmarshal(b, &h); err != nil {
		return err
	}
	if lie {
		r.mu.Lock()
		if n := len(r.kept); n > 0 {
			h = holding{Run: r.runID, Have: r.kept[n-1].seq}
		}
		r.mu.Unlock()
	}
	rep, err := r.snapshot(h)
	if err != nil {
		return err
	}
	p.mu.Lock()
	if rep.Base != 0 {
		p.deltas++
		if p.deltasOf == nil {
			p.deltasOf = map[int]int{}
		}
		p.deltasOf[pid]++
	}
	p.bytes += len(rep.Data)
	p.mu.Unlock()
	b, _ = json.Marshal(rep)
	return json.Unmarshal(b, reply)
}

func counterVec(name string, n int) (*prometheus.Registry, []prometheus.Counter) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: "h"}, []string{"key"})
	reg.MustRegister(c)
	out := make([]prometheus.Counter, n)
	for i := range out {
		out[i] = c.WithLabelValues("k" + strconv.Itoa(i))
	}
	return reg, out
}

// TestDeltaReportsKeepExactSums: scrape after scrape, with counters moving
// at random in every worker, the agent (fed deltas) shows the exact sums.
func TestDeltaReportsKeepExactSums(t *testing.T) {
	p := &jsonPeers{}
	rnd := rand.New(rand.NewPCG(3, 4))
	var series [][]prometheus.Counter
	for w := range 3 {
		reg, cs := counterVec("e_total", 50)
		p.add(10+w, strconv.Itoa(w), reg)
		series = append(series, cs)
	}
	a := testAggregator(p, time.Second)
	defer a.Stop()
	want := make([]float64, 50)
	for round := range 30 {
		for range rnd.IntN(20) {
			w, i := rnd.IntN(3), rnd.IntN(50)
			v := float64(1 + rnd.IntN(1000))
			series[w][i].Add(v)
			want[i] += v
		}
		if round == 15 {
			p.mu.Lock()
			p.lie = 2 // two workers answer against a base the agent does not hold
			p.mu.Unlock()
		}
		fams, err := a.Gather(t.Context(), false)
		if err != nil {
			t.Fatal(err)
		}
		got := samples(t, fams)
		for i, v := range want {
			if k := `e_total{key="k` + strconv.Itoa(i) + `"}`; got[k] != v {
				t.Fatalf("round %d: %s = %v, want %v", round, k, got[k], v)
			}
		}
		for w := range 3 {
			if k := `brood_scrape_slot_up{slot="` + strconv.Itoa(w) + `"}`; got[k] != 1 {
				t.Fatalf("round %d: %s = %v, want 1", round, k, got[k])
			}
		}
	}
	if p.deltas < 3*25 {
		t.Fatalf("%d of 90 replies were deltas, want nearly all but the first", p.deltas)
	}
}

// TestDeltasAcrossAWorkerRestart: a slot's new worker (a new pid, or the
// same pid reused by a new process, before or after the old one was
// retired) starts from a whole report, and its counts add to those carried
// for the old one: none lost, none counted twice, at once and after.
func TestDeltasAcrossAWorkerRestart(t *testing.T) {
	for _, c := range []struct {
		name       string
		samePID    bool
		retiredOld bool // the old pid was retired before the new process reported
	}{
		{"new pid", false, true},
		{"same pid", true, false},
		{"same pid, old one retired", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := &jsonPeers{}
			reg, cs := counterVec("r_total", 10)
			r1 := p.add(10, "0", reg)
			other, _ := counterVec("other_total", 1)
			p.add(11, "1", other) // the membership is never empty
			a := testAggregator(p, time.Second)
			defer a.Stop()
			clock := time.Unix(1000, 0)
			a.now = func() time.Time { return clock }
			for range 5 {
				cs[1].Add(5)
				clock = clock.Add(100 * time.Millisecond)
				if _, err := a.Gather(t.Context(), false); err != nil {
					t.Fatal(err)
				}
			}
			p.remove(10)
			if c.retiredOld {
				clock = clock.Add(retireGrace + time.Second)
				if _, err := a.Gather(t.Context(), false); err != nil {
					t.Fatal(err)
				}
			}
			newPID := 20
			if c.samePID {
				newPID = 10
			}
			reg2, cs2 := counterVec("r_total", 10)
			r2 := p.add(newPID, "0", reg2)
			// More than the old one counted: a reset is not what tells
			// the new process from the old.
			cs2[1].Add(30)
			// The new process's first answer is whole: the agent holds
			// another run's report, or none.
			before := p.deltasOf[newPID]
			clock = clock.Add(100 * time.Millisecond)
			fams, err := a.Gather(t.Context(), false)
			if err != nil {
				t.Fatal(err)
			}
			if p.deltasOf[newPID] != before {
				t.Fatal("a new process answered its first gather with a delta")
			}
			if r2.seq != 1 {
				t.Fatalf("the new process made %d reports, want 1", r2.seq)
			}
			got := samples(t, fams)
			if v := got[`r_total{key="k1"}`]; v != 55 {
				t.Fatalf("r_total{k1} = %v after the restart, want 25 carried + 30", v)
			}
			if v := got[`brood_scrape_slot_up{slot="0"}`]; v != 1 {
				t.Fatalf("slot 0 up = %v with its new process answering, want 1", v)
			}
			if h := a.holds(newPID); h.Run != r2.runID || h.Have != 1 {
				t.Fatalf("the agent holds %+v, want the new run's report 1", h)
			}
			cs2[1].Add(1)
			clock = clock.Add(100 * time.Millisecond)
			fams, _ = a.Gather(t.Context(), false)
			if v := samples(t, fams)[`r_total{key="k1"}`]; v != 56 {
				t.Fatalf("r_total{k1} = %v, want 56", v)
			}
			if p.deltasOf[newPID] != before+1 {
				t.Fatal("the new process's second answer was not a delta")
			}
			// A late report of the old process, whole or a delta against
			// the seq the agent holds, changes nothing.
			late, err := r1.snapshot(holding{Run: r1.runID, Have: r1.seq})
			if err != nil || late.Base == 0 {
				t.Fatalf("snapshot against the old run's newest report: base %d, %v; want a delta", late.Base, err)
			}
			late.Base = a.holds(newPID).Have
			if err := a.record(late, newPID); !errors.Is(err, errStaleBase) {
				t.Fatalf("a delta of another run against the held seq: %v, want errStaleBase", err)
			}
			cs[1].Add(100)
			whole, _ := r1.snapshot(holding{})
			whole.Seq += 100
			if err := a.record(whole, 10); err != nil {
				t.Fatal(err)
			}
			fams, _ = a.Gather(t.Context(), false)
			if v := samples(t, fams)[`r_total{key="k1"}`]; v != 56 {
				t.Fatalf("r_total{k1} = %v after a late report of the old process, want 56", v)
			}
		})
	}
}

// TestDeltasAfterAnAgentRestart: a new agent holds no report, so the
// workers answer it whole, and its counters carry on from the state file.
func TestDeltasAfterAnAgentRestart(t *testing.T) {
	file := t.TempDir() + "/state"
	cfg := AggregatorConfig{StateFile: file, Gatherer: prometheus.NewRegistry(), Timeout: time.Second}
	p := &jsonPeers{}
	reg, cs := counterVec("s_total", 10)
	r := p.add(10, "0", reg)
	first := newAggregator(p, cfg)
	first.stateFile = file
	for range 3 {
		cs[2].Add(4)
		if _, err := first.Gather(t.Context(), false); err != nil {
			t.Fatal(err)
		}
	}
	if p.deltas != 2 {
		t.Fatalf("%d deltas in 3 gathers, want 2", p.deltas)
	}
	first.Stop()
	next := newAggregator(p, cfg)
	next.stateFile = file
	next.loadState()
	defer next.Stop()
	// A periodic report that was a delta for the old agent: refused, and
	// the worker is told the new agent holds nothing.
	rep, err := r.snapshot(holding{Run: r.runID, Have: r.seq})
	if err != nil || rep.Base == 0 {
		t.Fatalf("snapshot against the newest report: base %d, %v; want a delta", rep.Base, err)
	}
	h, err := next.report(rep, 10)
	if err != nil || h != (holding{}) {
		t.Fatalf("a delta to an agent that holds nothing: %+v, %v; want an empty holding, no error", h, err)
	}
	cs[2].Add(1)
	before := p.deltas
	fams, err := next.Gather(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	if p.deltas != before {
		t.Fatal("a worker answered a new agent's first gather with a delta")
	}
	if got := samples(t, fams)[`s_total{key="k2"}`]; got != 13 {
		t.Fatalf("s_total{k2} = %v after an agent restart, want 13", got)
	}
	if h := next.holds(10); h.Run != r.runID || h.Have != r.seq {
		t.Fatalf("the new agent holds %+v, want run %d seq %d", h, r.runID, r.seq)
	}
}

// TestAnOlderAgentGetsWholeReports: a gather without a holding (what an
// agent before deltas sends) is answered whole, and so is one that holds
// another run's report or one no longer kept.
func TestAnOlderAgentGetsWholeReports(t *testing.T) {
	reg, _ := counterVec("o_total", 3)
	r := &Reporter{slot: "0", g: reg, runID: newRun()}
	for _, h := range []holding{{}, {Run: r.runID + 2, Have: 1}, {Run: r.runID, Have: 99}} {
		rep, err := r.snapshot(h)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Base != 0 {
			t.Fatalf("holding %+v answered with a delta against %d", h, rep.Base)
		}
		if _, err := decodeFamilies(rep.Data); err != nil {
			t.Fatal(err)
		}
	}
	// The oldest kept report is still a base; one before it is not.
	rep, _ := r.snapshot(holding{Run: r.runID, Have: r.seq - 1})
	if rep.Base != r.seq-2 {
		t.Fatalf("against the report before the last: base %d, want %d", rep.Base, r.seq-2)
	}
	rep, _ = r.snapshot(holding{Run: r.runID, Have: r.seq - keepReports - 1})
	if rep.Base != 0 {
		t.Fatalf("against a report no longer kept: base %d, want whole", rep.Base)
	}
}

// TestAWholeReportsDataIsNotReused: a whole report's Data goes out (the
// messenger may marshal it after snapshot returns), so its buffer is not
// the next report's even once it is no longer kept.
func TestAWholeReportsDataIsNotReused(t *testing.T) {
	reg, cs := counterVec("w_total", 20)
	r := &Reporter{slot: "0", g: reg, runID: newRun()}
	first, err := r.snapshot(holding{})
	if err != nil || first.Base != 0 {
		t.Fatalf("first snapshot: base %d, %v; want whole", first.Base, err)
	}
	want := bytes.Clone(first.Data)
	for range keepReports + 2 {
		cs[0].Add(1)
		if _, err := r.snapshot(holding{Run: r.runID, Have: r.seq}); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(first.Data, want) {
		t.Fatal("a whole report's Data changed under a later report")
	}
}

// TestSimpleFamiliesEncodeAsProtoDoes: the families encoded by hand are
// byte for byte what proto.Marshal writes, whatever optional field is set
// or not (and the others go through proto).
func TestSimpleFamiliesEncodeAsProtoDoes(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "m_total", Help: "h"}, []string{"key", "route"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "m_gauge", Help: "h"})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "m_seconds", Help: "h"})
	reg.MustRegister(c, g, h)
	c.WithLabelValues("a", "/x").Add(1)
	c.WithLabelValues("b", "").Add(2.5)
	g.Set(-3)
	h.Observe(1)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]*dto.MetricFamily{}
	for _, mf := range fams {
		by[mf.GetName()] = mf
	}
	if simpleFamily(by["m_seconds"]) {
		t.Fatal("a histogram family counts as simple")
	}
	clone := func(name string) *dto.MetricFamily { return proto.Clone(by[name]).(*dto.MetricFamily) }
	variants := map[string]*dto.MetricFamily{"counters": clone("m_total"), "gauge": clone("m_gauge")}
	add := func(name string, base string, change func(*dto.MetricFamily)) {
		mf := clone(base)
		change(mf)
		variants[name] = mf
	}
	add("no help", "m_total", func(mf *dto.MetricFamily) { mf.Help = nil })
	add("empty help, unit", "m_total", func(mf *dto.MetricFamily) { mf.Help, mf.Unit = ptrTo(""), ptrTo("seconds") })
	add("no type", "m_total", func(mf *dto.MetricFamily) { mf.Type = nil })
	add("no created", "m_total", func(mf *dto.MetricFamily) { mf.Metric[0].Counter.CreatedTimestamp = nil })
	add("created zero", "m_total", func(mf *dto.MetricFamily) {
		mf.Metric[0].Counter.CreatedTimestamp.Seconds, mf.Metric[0].Counter.CreatedTimestamp.Nanos = 0, 0
	})
	add("created negative", "m_total", func(mf *dto.MetricFamily) {
		mf.Metric[0].Counter.CreatedTimestamp.Seconds, mf.Metric[0].Counter.CreatedTimestamp.Nanos = -5, -7
	})
	add("no value", "m_total", func(mf *dto.MetricFamily) { mf.Metric[0].Counter.Value = nil })
	add("special values", "m_total", func(mf *dto.MetricFamily) {
		mf.Metric[0].Counter.Value, mf.Metric[1].Counter.Value = ptrTo(math.Inf(1)), ptrTo(math.Copysign(0, -1))
	})
	add("timestamps", "m_total", func(mf *dto.MetricFamily) {
		mf.Metric[0].TimestampMs, mf.Metric[1].TimestampMs = ptrTo(int64(1700000000000)), ptrTo(int64(-1))
	})
	add("no label name", "m_total", func(mf *dto.MetricFamily) { mf.Metric[0].Label[0].Name = nil })
	add("long label value", "m_total", func(mf *dto.MetricFamily) { mf.Metric[0].Label[0].Value = ptrTo(strings.Repeat("v", 300)) })
	add("no series", "m_total", func(mf *dto.MetricFamily) { mf.Metric = nil })
	add("untyped", "m_gauge", func(mf *dto.MetricFamily) {
		mf.Type = dto.MetricType_UNTYPED.Enum()
		mf.Metric[0].Untyped, mf.Metric[0].Gauge = &dto.Untyped{Value: ptrTo(4.0)}, nil
	})
	add("empty gauge", "m_gauge", func(mf *dto.MetricFamily) { mf.Metric[0].Gauge = &dto.Gauge{} })
	add("gauge and counter", "m_gauge", func(mf *dto.MetricFamily) { mf.Metric[0].Counter = &dto.Counter{Value: ptrTo(1.0)} })
	add("no name", "m_gauge", func(mf *dto.MetricFamily) { mf.Name = nil })
	for name, mf := range variants {
		if !simpleFamily(mf) {
			t.Fatalf("%s: not simple", name)
		}
		want, err := proto.Marshal(mf)
		if err != nil {
			t.Fatal(err)
		}
		// And the agent decodes them back by hand as proto would, every
		// prefix (cut anywhere) included.
		for n := 0; n <= len(want); n++ {
			var viaProto dto.MetricFamily
			perr := proto.Unmarshal(want[:n], &viaProto)
			got, ok := decodeSimpleFamily(want[:n])
			switch {
			case ok && perr != nil:
				t.Fatalf("%s cut at %d: decoded by hand, proto says %v", name, n, perr)
			case ok && !proto.Equal(got, &viaProto):
				t.Fatalf("%s cut at %d: by hand %v, proto %v", name, n, got, &viaProto)
			case !ok && n == len(want):
				t.Fatalf("%s: not decoded by hand", name)
			}
		}
		if got := appendSimpleFamily(nil, mf); !bytes.Equal(got, want) {
			t.Fatalf("%s: encoded by hand\n%x\nproto.Marshal\n%x", name, got, want)
		}
		if n := simpleFamilySize(mf); n != len(want) {
			t.Fatalf("%s: size %d, proto's %d", name, n, len(want))
		}
	}
	for name, change := range map[string]func(*dto.Metric){
		"exemplar":  func(m *dto.Metric) { m.Counter.Exemplar = &dto.Exemplar{Value: ptrTo(1.0)} },
		"summary":   func(m *dto.Metric) { m.Summary = &dto.Summary{} },
		"histogram": func(m *dto.Metric) { m.Histogram = &dto.Histogram{} },
	} {
		mf := clone("m_total")
		change(mf.Metric[0])
		if simpleFamily(mf) {
			t.Fatalf("a family with a %s counts as simple", name)
		}
		b, _ := proto.Marshal(mf)
		if _, ok := decodeSimpleFamily(b); ok {
			t.Fatalf("a family with a %s decoded by hand", name)
		}
	}
	for what, b := range map[string][]byte{
		"unknown family field": protowire.AppendVarint(protowire.AppendTag(nil, 9, protowire.VarintType), 1),
		"name as a varint":     protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 1),
	} {
		if _, ok := decodeSimpleFamily(b); ok {
			t.Fatalf("%s: decoded by hand", what)
		}
	}
	// The whole registry through encodeEach decodes back to what it was.
	e, err := encodeEach(nil, fams)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeFamilies(e.buf)
	if err != nil || len(back) != len(fams) {
		t.Fatalf("decoded %d families, %v; want %d", len(back), err, len(fams))
	}
	for i := range fams {
		if !proto.Equal(back[i], fams[i]) {
			t.Fatalf("family %s did not survive encodeEach", fams[i].GetName())
		}
	}
}

// TestAPeriodicReportIsDueAnIntervalAfterTheNewestGather: a scrape's
// gather puts the next periodic report off by an interval from it; with no
// gather for an interval, one is due at once.
func TestAPeriodicReportIsDueAnIntervalAfterTheNewestGather(t *testing.T) {
	reg, _ := counterVec("p_total", 1)
	r := &Reporter{slot: "0", g: reg, runID: newRun()}
	if d := r.due(time.Second); d != 0 {
		t.Fatalf("never gathered: due in %s, want now", d)
	}
	if _, err := r.snapshot(holding{}); err != nil { // a scrape's gather
		t.Fatal(err)
	}
	if d := r.due(time.Second); d < 900*time.Millisecond || d > time.Second {
		t.Fatalf("just gathered: due in %s, want about a second", d)
	}
	r.mu.Lock()
	r.last = r.last.Add(-700 * time.Millisecond)
	r.mu.Unlock()
	if d := r.due(time.Second); d < 200*time.Millisecond || d > 300*time.Millisecond {
		t.Fatalf("gathered 700 ms ago: due in %s, want about 300 ms", d)
	}
	r.mu.Lock()
	r.last = r.last.Add(-time.Second)
	r.mu.Unlock()
	if d := r.due(time.Second); d != 0 {
		t.Fatalf("gathered 1.7 s ago: due in %s, want now", d)
	}
}
