package merge

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var t0 = time.Unix(1_000_000, 0)

// snap is one Update.
type snap struct {
	slot string
	pid  int
	seq  uint64
	at   time.Time // zero: t0
	fams []*dto.MetricFamily
}

// runSnap is one Update of a snapshot that names its process's run.
type runSnap struct {
	snap
	run uint64
}

// retire is one Retire, between snapshots.
type retire struct {
	slot string
	pid  int
}

func apply(t *testing.T, m *Merger, steps ...any) {
	t.Helper()
	for _, s := range steps {
		switch s := s.(type) {
		case snap:
			at := s.at
			if at.IsZero() {
				at = t0
			}
			m.Update(s.slot, s.pid, 0, s.seq, at, s.fams)
		case runSnap:
			at := s.at
			if at.IsZero() {
				at = t0
			}
			m.Update(s.slot, s.pid, s.run, s.seq, at, s.fams)
		case retire:
			m.Retire(s.slot, s.pid)
		default:
			t.Fatalf("unknown step %T", s)
		}
	}
}

// flat encodes fams as text and returns each sample line's value by its
// name and labels, failing the test if the output does not encode.
// restored is a new Merger restored from m's state, as a new agent is.
func restored(t *testing.T, m *Merger) *Merger {
	t.Helper()
	b, err := m.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	r := New()
	if err := r.UnmarshalState(b, t0); err != nil {
		t.Fatal(err)
	}
	return r
}

func flat(t *testing.T, fams []*dto.MetricFamily) map[string]float64 {
	t.Helper()
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range fams {
		if err := enc.Encode(mf); err != nil {
			t.Fatalf("encode %s: %v", mf.GetName(), err)
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
			t.Fatalf("line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// check compares the samples named in want; a want of -1 says the sample
// must be absent.
func check(t *testing.T, got map[string]float64, want map[string]float64) {
	t.Helper()
	for _, k := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[k]
		switch {
		case want[k] == -1 && ok:
			t.Errorf("%s = %v, want absent", k, g)
		case want[k] == -1:
		case !ok:
			t.Errorf("%s absent, want %v; have:\n%s", k, want[k], dump(got))
		case g != want[k]:
			t.Errorf("%s = %v, want %v", k, g, want[k])
		}
	}
}

func dump(m map[string]float64) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "  %s %v\n", k, m[k])
	}
	return b.String()
}

// fam builds one family by hand: each value is one series, labels given as
// "k=v,k=v".
func fam(name string, t dto.MetricType, series ...any) *dto.MetricFamily {
	mf := &dto.MetricFamily{Name: ptr(name), Help: ptr(name + " help"), Type: t.Enum()}
	for i := 0; i < len(series); i += 2 {
		m := &dto.Metric{Label: labels(series[i].(string))}
		v := series[i+1].(float64)
		switch t {
		case dto.MetricType_COUNTER:
			m.Counter = &dto.Counter{Value: ptr(v)}
		case dto.MetricType_GAUGE:
			m.Gauge = &dto.Gauge{Value: ptr(v)}
		case dto.MetricType_UNTYPED:
			m.Untyped = &dto.Untyped{Value: ptr(v)}
		case dto.MetricType_SUMMARY:
			m.Summary = &dto.Summary{SampleCount: ptr(uint64(v)), SampleSum: ptr(v * 10),
				Quantile: []*dto.Quantile{{Quantile: ptr(0.5), Value: ptr(v / 2)}}}
		}
		mf.Metric = append(mf.Metric, m)
	}
	return mf
}

func labels(s string) []*dto.LabelPair {
	if s == "" {
		return nil
	}
	var out []*dto.LabelPair
	for kv := range strings.SplitSeq(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		out = append(out, lp(k, v))
	}
	slices.SortFunc(out, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out
}

func counter(name string, series ...any) *dto.MetricFamily {
	return fam(name, dto.MetricType_COUNTER, series...)
}

func gaugeFam(name string, series ...any) *dto.MetricFamily {
	return fam(name, dto.MetricType_GAUGE, series...)
}

func fams(f ...*dto.MetricFamily) []*dto.MetricFamily { return f }

func TestCluster(t *testing.T) {
	late := t0.Add(time.Second)
	tests := []struct {
		name   string
		steps  []any
		cutoff time.Time // zero: t0
		want   map[string]float64
	}{
		{
			name: "counters summed across slots",
			steps: []any{
				snap{"0", 10, 1, t0, fams(counter("req_total", "", 3.0))},
				snap{"1", 11, 1, t0, fams(counter("req_total", "", 4.0))},
				snap{"2", 12, 1, t0, fams(counter("req_total", "", 5.0))},
			},
			want: map[string]float64{"req_total": 12, `brood_scrape_slot_up{slot="0"}`: 1},
		},
		{
			name: "a replaced pid's last values carried forward",
			steps: []any{
				snap{"0", 10, 1, t0, fams(counter("req_total", "", 7.0))},
				snap{"1", 11, 1, t0, fams(counter("req_total", "", 1.0))},
				retire{"0", 10},
				snap{"0", 20, 1, t0, fams(counter("req_total", "", 2.0))},
			},
			want: map[string]float64{"req_total": 10},
		},
		{
			name: "carried across several replacements",
			steps: []any{
				snap{"0", 10, 1, t0, fams(counter("req_total", "", 7.0))},
				retire{"0", 10},
				snap{"0", 20, 1, t0, fams(counter("req_total", "", 2.0))},
				retire{"0", 20},
				snap{"0", 30, 1, t0, fams(counter("req_total", "", 1.0))},
			},
			want: map[string]float64{"req_total": 10},
		},
		{
			name: "a killed pid, not yet replaced, keeps counting",
			steps: []any{
				snap{"0", 10, 1, t0, fams(counter("req_total", "", 7.0))},
				snap{"1", 11, 1, t0, fams(counter("req_total", "", 1.0))},
				retire{"0", 10},
			},
			want: map[string]float64{"req_total": 8, `brood_scrape_slot_up{slot="0"}`: 0, `brood_scrape_slot_up{slot="1"}`: 1},
		},
		{
			name: "a slot gone for good leaves slot_up, its counts stay",
			steps: []any{
				snap{"0", 10, 1, t0, fams(counter("req_total", "", 7.0))},
				snap{"1", 11, 1, t0.Add(UpMemory + time.Minute), fams(counter("req_total", "", 1.0))},
				retire{"0", 10},
			},
			cutoff: t0.Add(UpMemory + time.Minute),
			want:   map[string]float64{"req_total": 8, `brood_scrape_slot_up{slot="0"}`: -1, `brood_scrape_slot_up{slot="1"}`: 1},
		},
		{
			name: "a counter that resets under the same pid",
			steps: []any{
				snap{"0", 10, 1, t0, fams(counter("req_total", "", 7.0))},
				snap{"0", 10, 2, t0, fams(counter("req_total", "", 2.0))},
				snap{"0", 10, 3, t0, fams(counter("req_total", "", 3.0))},
			},
			want: map[string]float64{"req_total": 10},
		},
		{
			name: "a late snapshot is not a reset",
			steps: []any{
				snap{"0", 10, 2, t0, fams(counter("req_total", "", 7.0))},
				snap{"0", 10, 1, t0, fams(counter("req_total", "", 5.0))},
			},
			want: map[string]float64{"req_total": 7},
		},
		{
			name: "a retired pid's late report is ignored",
			steps: []any{
				snap{"0", 10, 1, t0, fams(counter("req_total", "", 7.0))},
				retire{"0", 10},
				snap{"0", 20, 1, t0, fams(counter("req_total", "", 1.0))},
				snap{"0", 10, 2, t0, fams(counter("req_total", "", 9.0))},
			},
			want: map[string]float64{"req_total": 8},
		},
		{
			name: "two pids of one slot during a rolling reload",
			steps: []any{
				snap{"0", 10, 1, t0, fams(counter("req_total", "", 7.0), gaugeFam("inflight", "", 3.0))},
				snap{"0", 20, 1, t0, fams(counter("req_total", "", 1.0), gaugeFam("inflight", "", 1.0))},
			},
			want: map[string]float64{"req_total": 8, "inflight": 1},
		},
		{
			name: "a series missing from a snapshot keeps its value",
			steps: []any{
				snap{"0", 10, 1, t0, fams(counter("req_total", "code=200", 7.0, "code=500", 1.0))},
				snap{"0", 10, 2, t0, fams(counter("req_total", "code=200", 8.0))},
			},
			want: map[string]float64{`req_total{code="200"}`: 8, `req_total{code="500"}`: 1},
		},
		{
			name: "label sets that differ between slots",
			steps: []any{
				snap{"0", 10, 1, t0, fams(counter("req_total", "code=200", 1.0))},
				snap{"1", 11, 1, t0, fams(counter("req_total", "code=500", 2.0, "code=200,method=GET", 4.0, "code=200", 8.0))},
			},
			want: map[string]float64{
				`req_total{code="200"}`:              9,
				`req_total{code="500"}`:              2,
				`req_total{code="200",method="GET"}`: 4,
			},
		},
		{
			name: "a type conflict: the majority wins, the other slot is named",
			steps: []any{
				snap{"0", 10, 1, t0, fams(counter("x", "", 1.0))},
				snap{"1", 11, 1, t0, fams(gaugeFam("x", "", 100.0))},
				snap{"2", 12, 1, t0, fams(counter("x", "", 2.0))},
			},
			want: map[string]float64{"x": 3, `brood_scrape_type_conflict{family="x",slot="1"}`: 1},
		},
		{
			name: "a type conflict tie goes to the first slot",
			steps: []any{
				snap{"1", 11, 1, t0, fams(counter("x", "", 1.0))},
				snap{"0", 10, 1, t0, fams(gaugeFam("x", "", 100.0))},
			},
			want: map[string]float64{"x": 100, `brood_scrape_type_conflict{family="x",slot="1"}`: 1},
		},
		{
			name: "a pid that changes a family's type starts it afresh",
			steps: []any{
				snap{"0", 10, 1, t0, fams(counter("x", "", 5.0))},
				snap{"0", 10, 2, t0, fams(gaugeFam("x", "", 2.0))},
			},
			want: map[string]float64{"x": 2},
		},
		{
			name: "gauges summed by default",
			steps: []any{
				snap{"0", 10, 1, t0, fams(gaugeFam("inflight", "", 2.0))},
				snap{"1", 11, 1, t0, fams(gaugeFam("inflight", "", 3.0))},
			},
			want: map[string]float64{"inflight": 5},
		},
		{
			name: "gauge policies from the label",
			steps: []any{
				snap{"0", 10, 1, t0, fams(gaugeFam("g", "brood_aggregate=max,k=a", 2.0, "brood_aggregate=min,k=b", 2.0, "brood_aggregate=slot,k=c", 2.0, "brood_aggregate=sum,k=d", 2.0))},
				snap{"1", 11, 1, t0, fams(gaugeFam("g", "brood_aggregate=max,k=a", 5.0, "brood_aggregate=min,k=b", 5.0, "brood_aggregate=slot,k=c", 5.0, "brood_aggregate=sum,k=d", 5.0))},
			},
			want: map[string]float64{
				`g{k="a"}`: 5, `g{k="b"}`: 2, `g{k="c",slot="0"}`: 2, `g{k="c",slot="1"}`: 5, `g{k="d"}`: 7,
				`g{k="c"}`: -1,
			},
		},
		{
			name: "standard gauges that a sum would spoil",
			steps: []any{
				snap{"0", 10, 1, t0, fams(gaugeFam("process_start_time_seconds", "", 200.0), gaugeFam("go_info", "version=go1", 1.0))},
				snap{"1", 11, 1, t0, fams(gaugeFam("process_start_time_seconds", "", 100.0), gaugeFam("go_info", "version=go1", 1.0))},
			},
			want: map[string]float64{"process_start_time_seconds": 100, `go_info{version="go1"}`: 1},
		},
		{
			name: "a down slot's gauges are left out, its counters kept",
			steps: []any{
				snap{"0", 10, 1, t0, fams(gaugeFam("inflight", "", 2.0), counter("req_total", "", 4.0))},
				snap{"1", 11, 1, late, fams(gaugeFam("inflight", "", 3.0), counter("req_total", "", 1.0))},
			},
			cutoff: late,
			want: map[string]float64{
				"inflight": 3, "req_total": 5,
				`brood_scrape_slot_up{slot="0"}`: 0, `brood_scrape_slot_up{slot="1"}`: 1,
			},
		},
		{
			name: "summaries per slot, count and sum carried, quantiles current",
			steps: []any{
				snap{"0", 10, 1, t0, fams(fam("lat", dto.MetricType_SUMMARY, "", 4.0))},
				snap{"1", 11, 1, t0, fams(fam("lat", dto.MetricType_SUMMARY, "", 6.0))},
				retire{"0", 10},
				snap{"0", 20, 1, t0, fams(fam("lat", dto.MetricType_SUMMARY, "", 2.0))},
			},
			want: map[string]float64{
				`lat_count{slot="0"}`: 6, `lat_sum{slot="0"}`: 60, `lat{slot="0",quantile="0.5"}`: 1,
				`lat_count{slot="1"}`: 6, `lat{slot="1",quantile="0.5"}`: 3,
				"lat_count": -1,
			},
		},
		{
			name: "untyped per slot",
			steps: []any{
				snap{"0", 10, 1, t0, fams(fam("u", dto.MetricType_UNTYPED, "", 4.0))},
				snap{"1", 11, 1, t0, fams(fam("u", dto.MetricType_UNTYPED, "", 6.0))},
			},
			want: map[string]float64{`u{slot="0"}`: 4, `u{slot="1"}`: 6, "u": -1},
		},
		{
			name: "a user's own slot label is kept",
			steps: []any{
				snap{"0", 10, 1, t0, fams(fam("u", dto.MetricType_UNTYPED, "slot=mine", 4.0))},
			},
			want: map[string]float64{`u{brood_slot="0",slot="mine"}`: 4},
		},
		{
			name: "the agent is a slot like the others",
			steps: []any{
				snap{"agent", 5, 1, t0, fams(counter("jobs_total", "", 2.0))},
				snap{"0", 10, 1, t0, fams(counter("jobs_total", "", 1.0))},
			},
			want: map[string]float64{"jobs_total": 3, `brood_scrape_slot_up{slot="agent"}`: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			apply(t, m, tt.steps...)
			cutoff := tt.cutoff
			if cutoff.IsZero() {
				cutoff = t0
			}
			check(t, flat(t, m.Cluster(cutoff)), tt.want)
		})
	}
}

func TestPerSlot(t *testing.T) {
	m := New()
	apply(t, m,
		snap{"0", 10, 1, t0, fams(counter("req_total", "", 7.0), gaugeFam("inflight", "", 1.0))},
		retire{"0", 10},
		snap{"0", 20, 1, t0, fams(counter("req_total", "", 2.0), gaugeFam("inflight", "", 2.0))},
		snap{"1", 11, 1, t0, fams(counter("req_total", "", 1.0), gaugeFam("inflight", "", 4.0))},
	)
	check(t, flat(t, m.PerSlot(t0)), map[string]float64{
		`req_total{slot="0"}`: 9, `req_total{slot="1"}`: 1,
		`inflight{slot="0"}`: 2, `inflight{slot="1"}`: 4,
		"req_total": -1,
	})
}

// gatherer is a registry holding one histogram, observing values.
func histSnapshot(t *testing.T, opts prometheus.HistogramOpts, values ...float64) []*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewRegistry()
	h := prometheus.NewHistogram(opts)
	reg.MustRegister(h)
	for _, v := range values {
		h.Observe(v)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

func TestClassicHistograms(t *testing.T) {
	opts := prometheus.HistogramOpts{Name: "lat_seconds", Help: "h", Buckets: []float64{0.1, 1, 10}}
	other := prometheus.HistogramOpts{Name: "lat_seconds", Help: "h", Buckets: []float64{0.5, 1}}
	tests := []struct {
		name  string
		steps []any
		want  map[string]float64
	}{
		{
			name: "same buckets summed",
			steps: []any{
				snap{"0", 10, 1, t0, histSnapshot(t, opts, 0.0625, 0.5, 4)},
				snap{"1", 11, 1, t0, histSnapshot(t, opts, 0.0625, 48)},
			},
			want: map[string]float64{
				`lat_seconds_bucket{le="0.1"}`: 2, `lat_seconds_bucket{le="1"}`: 3, `lat_seconds_bucket{le="10"}`: 4,
				`lat_seconds_bucket{le="+Inf"}`: 5, "lat_seconds_count": 5, "lat_seconds_sum": 52.625,
			},
		},
		{
			name: "carried across a replacement, and across a reset",
			steps: []any{
				snap{"0", 10, 1, t0, histSnapshot(t, opts, 0.05, 0.5, 5)},
				retire{"0", 10},
				snap{"0", 20, 1, t0, histSnapshot(t, opts, 0.05, 0.05)},
				snap{"0", 20, 2, t0, histSnapshot(t, opts, 5)},
			},
			want: map[string]float64{
				`lat_seconds_bucket{le="0.1"}`: 3, `lat_seconds_bucket{le="10"}`: 6, "lat_seconds_count": 6,
			},
		},
		{
			name: "different layouts stay cumulative",
			steps: []any{
				snap{"0", 10, 1, t0, histSnapshot(t, opts, 0.05, 0.5, 5)},
				snap{"1", 11, 1, t0, histSnapshot(t, other, 0.2, 0.7)},
			},
			want: map[string]float64{
				`lat_seconds_bucket{le="0.1"}`: 1, `lat_seconds_bucket{le="0.5"}`: 2, // slot 0 counted at 0.1
				`lat_seconds_bucket{le="1"}`: 4, `lat_seconds_bucket{le="10"}`: 5, "lat_seconds_count": 5,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			apply(t, m, tt.steps...)
			check(t, flat(t, m.Cluster(t0)), tt.want)
		})
	}
}

// TestNativeHistograms compares the merge of two processes' native
// histograms with one histogram that observed everything, at the coarser
// schema.
func TestNativeHistograms(t *testing.T) {
	fine := prometheus.HistogramOpts{Name: "n", Help: "h", NativeHistogramBucketFactor: 1.1}   // schema 3
	coarse := prometheus.HistogramOpts{Name: "n", Help: "h", NativeHistogramBucketFactor: 2.1} // schema -1
	a := []float64{0.001, 0.5, 1.7, 3, 3.1, 100, -2, 0}
	b := []float64{0.7, 12, 12.5, -0.3, 1e-200}
	tests := []struct {
		name       string
		optA, optB prometheus.HistogramOpts
		ref        prometheus.HistogramOpts
	}{
		{"same schema", fine, fine, fine},
		{"different schemas", fine, coarse, coarse},
		{"different schemas, other order", coarse, fine, coarse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			m.Update("0", 10, 0, 1, t0, histSnapshot(t, tt.optA, a...))
			m.Update("1", 11, 0, 1, t0, histSnapshot(t, tt.optB, b...))
			got := find(t, m.Cluster(t0), "n").Metric[0].Histogram
			want := histSnapshot(t, tt.ref, append(slices.Clone(a), b...)...)[0].Metric[0].Histogram
			if got.GetSchema() != want.GetSchema() || got.GetSampleCount() != want.GetSampleCount() ||
				got.GetZeroCount() != want.GetZeroCount() || got.GetZeroThreshold() != want.GetZeroThreshold() {
				t.Fatalf("got schema %d count %d zero %d/%g, want %d %d %d/%g", got.GetSchema(), got.GetSampleCount(), got.GetZeroCount(), got.GetZeroThreshold(),
					want.GetSchema(), want.GetSampleCount(), want.GetZeroCount(), want.GetZeroThreshold())
			}
			for _, side := range []struct {
				name   string
				gs, ws []*dto.BucketSpan
				gd, wd []int64
			}{
				{"positive", got.PositiveSpan, want.PositiveSpan, got.PositiveDelta, want.PositiveDelta},
				{"negative", got.NegativeSpan, want.NegativeSpan, got.NegativeDelta, want.NegativeDelta},
			} {
				gb, wb := spans(side.gs, side.gd, nil), spans(side.ws, side.wd, nil)
				if !maps.Equal(gb, wb) {
					t.Errorf("%s buckets: got %v, want %v", side.name, gb, wb)
				}
			}
		})
	}
}

func TestNativeHistogramEmptyStaysNative(t *testing.T) {
	opts := prometheus.HistogramOpts{Name: "n", Help: "h", NativeHistogramBucketFactor: 1.1, NativeHistogramZeroThreshold: prometheus.NativeHistogramZeroThresholdZero}
	m := New()
	m.Update("0", 10, 0, 1, t0, histSnapshot(t, opts))
	m.Update("1", 11, 0, 1, t0, histSnapshot(t, opts))
	h := find(t, m.Cluster(t0), "n").Metric[0].Histogram
	if len(h.PositiveSpan) != 1 || h.GetSchema() != 3 {
		t.Fatalf("got spans %v schema %d, want the no-op span and schema 3", h.PositiveSpan, h.GetSchema())
	}
}

func find(t *testing.T, fams []*dto.MetricFamily, name string) *dto.MetricFamily {
	t.Helper()
	for _, mf := range fams {
		if mf.GetName() == name {
			return mf
		}
	}
	t.Fatalf("no family %s", name)
	return nil
}

func TestEncodeSpansRoundTrip(t *testing.T) {
	for _, b := range []map[int32]float64{
		{}, {0: 1}, {-3: 2, -2: 1, 5: 7, 6: 1, 100: 3}, {1: 1, 3: 1},
	} {
		sp, d, _ := encodeSpans(b, false)
		if got := spans(sp, d, nil); !maps.Equal(got, b) {
			t.Errorf("ints: got %v, want %v", got, b)
		}
		sp, _, c := encodeSpans(b, true)
		if got := spans(sp, nil, c); !maps.Equal(got, b) {
			t.Errorf("floats: got %v, want %v", got, b)
		}
	}
}

// TestAReusedPIDIsANewProcess: a snapshot of another run under a pid is a
// new process's (the system reused the pid), whatever its seq and values:
// the old one's counts are carried, not replaced nor counted twice, and
// its late snapshots are ignored.
func TestAReusedPIDIsANewProcess(t *testing.T) {
	c := func(v float64) []*dto.MetricFamily { return fams(counter("req_total", "", v)) }
	cg := func(v, g float64) []*dto.MetricFamily {
		return fams(counter("req_total", "", v), gaugeFam("inflight", "", g))
	}
	for _, tt := range []struct {
		name  string
		steps []any
		want  map[string]float64
	}{
		{"a new run under a live pid", []any{
			runSnap{snap{"0", 10, 5, t0, cg(25, 3)}, 1},
			runSnap{snap{"0", 10, 1, t0, cg(30, 1)}, 2},
		}, map[string]float64{"req_total": 55, "inflight": 1}},
		{"a new run under a retired pid", []any{
			runSnap{snap{"0", 10, 5, t0, c(25)}, 1},
			retire{"0", 10},
			runSnap{snap{"0", 10, 1, t0, c(30)}, 2},
			runSnap{snap{"0", 10, 2, t0, c(31)}, 2},
		}, map[string]float64{"req_total": 56}},
		{"the old run's late snapshot", []any{
			runSnap{snap{"0", 10, 5, t0, c(25)}, 1},
			runSnap{snap{"0", 10, 1, t0, c(30)}, 2},
			runSnap{snap{"0", 10, 6, t0, c(40)}, 1},
		}, map[string]float64{"req_total": 55}},
		{"a run's own late snapshot", []any{
			runSnap{snap{"0", 10, 2, t0, c(7)}, 1},
			runSnap{snap{"0", 10, 1, t0, c(5)}, 1},
		}, map[string]float64{"req_total": 7}},
		{"no run is the live process's", []any{
			snap{"0", 10, 1, t0, c(7)},
			runSnap{snap{"0", 10, 2, t0, c(9)}, 1},
			snap{"0", 10, 3, t0, c(10)},
			runSnap{snap{"0", 10, 1, t0, c(1)}, 2},
		}, map[string]float64{"req_total": 11}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			apply(t, m, tt.steps...)
			check(t, flat(t, m.Cluster(t0)), tt.want)
			if n := len(m.Procs()); n != 1 {
				t.Fatalf("%d live processes, want 1", n)
			}
		})
	}
	// The same from a restored state: runs are kept in it.
	a := New()
	apply(t, a, runSnap{snap{"0", 10, 5, t0, c(25)}, 1}, runSnap{snap{"0", 10, 1, t0, c(30)}, 2},
		runSnap{snap{"1", 11, 3, t0, c(4)}, 5}, retire{"1", 11})
	r := restored(t, a)
	apply(t, r, runSnap{snap{"0", 10, 6, t0, c(40)}, 1}) // ignored: retired
	check(t, flat(t, r.Cluster(t0)), map[string]float64{"req_total": 59})
	apply(t, r, runSnap{snap{"0", 10, 1, t0, c(2)}, 3}) // run 2 left: carried
	apply(t, r, runSnap{snap{"1", 11, 1, t0, c(1)}, 6}) // a retired pid's new run
	check(t, flat(t, r.Cluster(t0)), map[string]float64{"req_total": 62})
}

func TestRetireUnknownIsHarmless(t *testing.T) {
	m := New()
	m.Retire("0", 1)
	m.Update("0", 10, 0, 1, t0, fams(counter("c", "", 1.0)))
	m.Retire("0", 99)
	check(t, flat(t, m.Cluster(t0)), map[string]float64{"c": 1})
}

func TestParsePolicy(t *testing.T) {
	for _, s := range []string{"sum", "max", "min", "slot"} {
		p, err := ParsePolicy(s)
		if err != nil || p.String() != s {
			t.Errorf("ParsePolicy(%q) = %v, %v", s, p, err)
		}
	}
	if _, err := ParsePolicy("avg"); err == nil {
		t.Error("ParsePolicy(avg): no error")
	}
}

// TestStateCarriesOver: a Merger restored from another's state (a new
// agent) shows the same view and goes on from it.
func TestStateCarriesOver(t *testing.T) {
	opts := prometheus.HistogramOpts{Name: "lat_seconds", Help: "h", Buckets: []float64{0.1, 1}, NativeHistogramBucketFactor: 1.1}
	steps := []any{
		snap{"0", 10, 1, t0, fams(counter("req_total", "code=200", 7.0), gaugeFam("g", "brood_aggregate=max", 3.0))},
		snap{"0", 10, 2, t0, fams(counter("req_total", "code=200", 2.0), gaugeFam("g", "brood_aggregate=max", 3.0))}, // a reset: 9
		snap{"1", 11, 1, t0, fams(counter("req_total", "code=200", 5.0), gaugeFam("g", "brood_aggregate=max", 4.0), fam("s", dto.MetricType_SUMMARY, "", 2.0))},
		retire{"1", 11},
		snap{"1", 21, 1, t0, fams(counter("req_total", "code=200", 1.0), gaugeFam("g", "brood_aggregate=max", 1.0))},
		snap{"2", 12, 1, t0, histSnapshot(t, opts, 0.05, 0.5, 3)},
	}
	a := New()
	apply(t, a, steps...)
	r := restored(t, a)
	want, got := flat(t, a.Cluster(t0)), flat(t, r.Cluster(t0))
	if !maps.Equal(got, want) {
		t.Fatalf("restored view differs:\ngot\n%swant\n%s", dump(got), dump(want))
	}
	check(t, got, map[string]float64{`req_total{code="200"}`: 15, "g": 3, "lat_seconds_count": 3})
	// The same pids go on; a retired one stays retired.
	more := []any{
		snap{"0", 10, 3, t0, fams(counter("req_total", "code=200", 4.0))},
		snap{"1", 11, 2, t0, fams(counter("req_total", "code=200", 50.0))},
	}
	apply(t, a, more...)
	apply(t, r, more...)
	want, got = flat(t, a.Cluster(t0)), flat(t, r.Cluster(t0))
	if !maps.Equal(got, want) {
		t.Fatalf("after more snapshots:\ngot\n%swant\n%s", dump(got), dump(want))
	}
	check(t, got, map[string]float64{`req_total{code="200"}`: 17})
}

func TestExemplarsKeepTheLatest(t *testing.T) {
	ex := func(id string, sec int64) *dto.Exemplar {
		return &dto.Exemplar{Label: labels("trace_id=" + id), Value: ptr(1.0), Timestamp: timestamppb.New(time.Unix(sec, 0))}
	}
	c := func(v float64, e *dto.Exemplar) *dto.MetricFamily {
		return &dto.MetricFamily{Name: ptr("c_total"), Help: ptr("h"), Type: dto.MetricType_COUNTER.Enum(),
			Metric: []*dto.Metric{{Counter: &dto.Counter{Value: ptr(v), Exemplar: e}}}}
	}
	m := New()
	m.Update("0", 10, 0, 1, t0, fams(c(1, ex("old", 100))))
	m.Update("1", 11, 0, 1, t0, fams(c(2, ex("new", 200))))
	m.Update("2", 12, 0, 1, t0, fams(c(3, nil)))
	got := find(t, m.Cluster(t0), "c_total").Metric[0].Counter
	if got.GetValue() != 6 || got.GetExemplar().GetLabel()[0].GetValue() != "new" {
		t.Fatalf("got %v with exemplar %v, want 6 with the exemplar of trace new", got.GetValue(), got.GetExemplar())
	}
}

func TestGaugeHistogramsSummedNotCarried(t *testing.T) {
	gh := func(count uint64) *dto.MetricFamily {
		return &dto.MetricFamily{Name: ptr("q"), Help: ptr("h"), Type: dto.MetricType_GAUGE_HISTOGRAM.Enum(),
			Metric: []*dto.Metric{{Histogram: &dto.Histogram{SampleCount: ptr(count), SampleSum: ptr(float64(count)),
				Bucket: []*dto.Bucket{{UpperBound: ptr(1.0), CumulativeCount: ptr(count)}}}}}}
	}
	m := New()
	m.Update("0", 10, 0, 1, t0, fams(gh(5)))
	m.Update("1", 11, 0, 1, t0, fams(gh(2)))
	m.Retire("0", 10)
	m.Update("0", 20, 0, 1, t0, fams(gh(1)))
	h := find(t, m.Cluster(t0), "q").Metric[0].Histogram
	if h.GetSampleCount() != 3 {
		t.Fatalf("gauge histogram count %d, want 3 (now, not carried)", h.GetSampleCount())
	}
}

func TestNativeDroppedWhenASlotHasOnlyClassicBuckets(t *testing.T) {
	native := prometheus.HistogramOpts{Name: "n", Help: "h", Buckets: []float64{1}, NativeHistogramBucketFactor: 1.1}
	classic := prometheus.HistogramOpts{Name: "n", Help: "h", Buckets: []float64{1}}
	m := New()
	m.Update("0", 10, 0, 1, t0, histSnapshot(t, native, 0.5, 2))
	m.Update("1", 11, 0, 1, t0, histSnapshot(t, classic, 0.5))
	h := find(t, m.Cluster(t0), "n").Metric[0].Histogram
	if h.Schema != nil || len(h.PositiveSpan) != 0 {
		t.Fatalf("native buckets kept (schema %v, spans %v) though slot 1 has none of its observations in them", h.Schema, h.PositiveSpan)
	}
	if h.GetSampleCount() != 3 || h.Bucket[0].GetCumulativeCount() != 2 {
		t.Fatalf("classic: count %d, le=1 %d; want 3 and 2", h.GetSampleCount(), h.Bucket[0].GetCumulativeCount())
	}
}

// TestViewsFollowEveryChange: the views reuse what did not change, and
// nothing else.
func TestViewsFollowEveryChange(t *testing.T) {
	m := New()
	late := t0.Add(time.Second)
	steps := []struct {
		name   string
		do     func()
		cutoff time.Time
		want   map[string]float64
	}{
		{"first", func() {
			m.Update("0", 10, 0, 1, t0, fams(counter("c_total", "", 1.0), gaugeFam("g", "", 5.0)))
			m.Update("1", 11, 0, 1, t0, fams(counter("c_total", "", 2.0), gaugeFam("g", "", 1.0)))
		}, t0, map[string]float64{"c_total": 3, "g": 6}},
		{"unchanged", func() {}, t0, map[string]float64{"c_total": 3, "g": 6}},
		{"same families, marked so", func() {
			m.UpdatePartial("0", 10, 0, 2, t0, nil, []string{"c_total", "g"})
		}, t0, map[string]float64{"c_total": 3, "g": 6}},
		{"a counter moves", func() {
			m.Update("0", 10, 0, 3, t0, fams(counter("c_total", "", 4.0), gaugeFam("g", "", 5.0)))
		}, t0, map[string]float64{"c_total": 6, "g": 6}},
		{"a slot goes down", func() {
			m.Update("1", 11, 0, 2, late, fams(counter("c_total", "", 2.0), gaugeFam("g", "", 1.0)))
		}, late, map[string]float64{"c_total": 6, "g": 1}},
		{"a pid retires", func() {
			m.Retire("0", 10)
			m.Update("0", 20, 0, 1, late, fams(counter("c_total", "", 1.0), gaugeFam("g", "", 7.0)))
		}, late, map[string]float64{"c_total": 7, "g": 8}},
		{"a family goes", func() {
			m.Update("0", 20, 0, 2, late, fams(counter("c_total", "", 1.0)))
			m.Update("1", 11, 0, 3, late, fams(counter("c_total", "", 2.0)))
		}, late, map[string]float64{"c_total": 7, "g": -1}},
	}
	for _, st := range steps {
		st.do()
		check(t, flat(t, m.Cluster(st.cutoff)), st.want)
		per := flat(t, m.PerSlot(st.cutoff))
		if want, got := st.want["c_total"], per[`c_total{slot="0"}`]+per[`c_total{slot="1"}`]; got != want {
			t.Errorf("%s: per-slot c_total adds to %v, want %v", st.name, got, want)
		}
	}
}
