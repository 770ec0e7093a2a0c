package merge

import (
	"math"
	"slices"

	dto "github.com/prometheus/client_model/go"
)

// point is one series' value, whatever its type: a counter, gauge or
// untyped value in v; a histogram or summary in count, sum and the rest.
type point struct {
	v         float64
	count     float64
	sum       float64
	buckets   []bucket // classic histogram, by increasing upper bound
	native    *native  // native histogram; nil if none (or not mergeable)
	quantiles []*dto.Quantile
	float     bool          // a histogram with float counts
	exemplar  *dto.Exemplar // a counter's
	nexs      []*dto.Exemplar
}

type bucket struct {
	upper, cum float64
	exemplar   *dto.Exemplar
}

// pointOf reads a metric of type t.
func pointOf(t dto.MetricType, m *dto.Metric) point {
	switch t {
	case dto.MetricType_COUNTER:
		c := m.GetCounter()
		return point{v: c.GetValue(), exemplar: c.GetExemplar()}
	case dto.MetricType_GAUGE:
		return point{v: m.GetGauge().GetValue()}
	case dto.MetricType_UNTYPED:
		return point{v: m.GetUntyped().GetValue()}
	case dto.MetricType_SUMMARY:
		s := m.GetSummary()
		return point{count: float64(s.GetSampleCount()), sum: s.GetSampleSum(), quantiles: s.GetQuantile()}
	}
	h := m.GetHistogram()
	p := point{count: float64(h.GetSampleCount()), sum: h.GetSampleSum(), nexs: h.GetExemplars()}
	if h.SampleCountFloat != nil && h.GetSampleCountFloat() > 0 {
		p.count, p.float = h.GetSampleCountFloat(), true
	}
	for _, b := range h.GetBucket() {
		c := float64(b.GetCumulativeCount())
		if b.CumulativeCountFloat != nil && b.GetCumulativeCountFloat() > 0 {
			c, p.float = b.GetCumulativeCountFloat(), true
		}
		p.buckets = append(p.buckets, bucket{upper: b.GetUpperBound(), cum: c, exemplar: b.GetExemplar()})
	}
	slices.SortFunc(p.buckets, func(a, b bucket) int { return cmpFloat(a.upper, b.upper) })
	p.native = nativeOf(h)
	return p
}

// reset reports whether p, the new value of a cumulative series, is lower
// than last: the series restarted from zero.
func (p point) reset(t dto.MetricType, last point) bool {
	if t == dto.MetricType_COUNTER {
		return p.v < last.v
	}
	return p.count < last.count
}

// add sums two values of one cumulative series (or of two slots' series).
func add(a, b point) point {
	r := point{
		v:        a.v + b.v,
		count:    a.count + b.count,
		sum:      a.sum + b.sum,
		float:    a.float || b.float,
		exemplar: later(a.exemplar, b.exemplar),
		buckets:  addBuckets(a.buckets, b.buckets),
		nexs:     append(slices.Clip(a.nexs), b.nexs...),
	}
	switch {
	case a.native != nil && b.native != nil:
		r.native = addNative(a.native, b.native)
	case a.native != nil && b.count == 0:
		r.native = a.native
	case b.native != nil && a.count == 0:
		r.native = b.native
	}
	// A summary's quantiles cannot be summed: the caller keeps the newest.
	return r
}

// addBuckets sums two cumulative bucket lists. Where one list has a bound
// the other lacks, the other's count there is taken at its next lower
// bound, which keeps the result cumulative (and exact when the layouts
// agree, the usual case).
func addBuckets(a, b []bucket) []bucket {
	switch {
	case len(a) == 0:
		return b
	case len(b) == 0:
		return a
	}
	out := make([]bucket, 0, max(len(a), len(b)))
	i, j := 0, 0
	var lastA, lastB float64
	for i < len(a) || j < len(b) {
		var u float64
		var ex *dto.Exemplar
		switch {
		case j >= len(b) || (i < len(a) && a[i].upper < b[j].upper):
			u, lastA, ex = a[i].upper, a[i].cum, a[i].exemplar
			i++
		case i >= len(a) || b[j].upper < a[i].upper:
			u, lastB, ex = b[j].upper, b[j].cum, b[j].exemplar
			j++
		default: // same bound
			u, lastA, lastB, ex = a[i].upper, a[i].cum, b[j].cum, later(a[i].exemplar, b[j].exemplar)
			i++
			j++
		}
		out = append(out, bucket{upper: u, cum: lastA + lastB, exemplar: ex})
	}
	return out
}

// later returns the exemplar with the later timestamp (one without a
// timestamp counts as oldest).
func later(a, b *dto.Exemplar) *dto.Exemplar {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case b.GetTimestamp().AsTime().After(a.GetTimestamp().AsTime()):
		return b
	}
	return a
}

// maxNativeExemplars bounds the exemplars of a merged native histogram.
const maxNativeExemplars = 10

// metric writes p as a dto.Metric of type t with labels.
func (p point) metric(t dto.MetricType, labels []*dto.LabelPair) *dto.Metric {
	m := &dto.Metric{Label: labels}
	switch t {
	case dto.MetricType_COUNTER:
		m.Counter = &dto.Counter{Value: ptr(p.v), Exemplar: p.exemplar}
	case dto.MetricType_GAUGE:
		m.Gauge = &dto.Gauge{Value: ptr(p.v)}
	case dto.MetricType_UNTYPED:
		m.Untyped = &dto.Untyped{Value: ptr(p.v)}
	case dto.MetricType_SUMMARY:
		m.Summary = &dto.Summary{SampleCount: ptr(uint64(p.count)), SampleSum: ptr(p.sum), Quantile: p.quantiles}
	default:
		m.Histogram = p.histogram()
	}
	return m
}

func (p point) histogram() *dto.Histogram {
	h := &dto.Histogram{SampleSum: ptr(p.sum)}
	if p.float {
		h.SampleCountFloat = ptr(p.count)
	} else {
		h.SampleCount = ptr(uint64(p.count))
	}
	for _, b := range p.buckets {
		db := &dto.Bucket{UpperBound: ptr(b.upper), Exemplar: b.exemplar}
		if p.float {
			db.CumulativeCountFloat = ptr(b.cum)
		} else {
			db.CumulativeCount = ptr(uint64(b.cum))
		}
		h.Bucket = append(h.Bucket, db)
	}
	if p.native != nil {
		p.native.write(h, p.float)
		exs := p.nexs
		if len(exs) > maxNativeExemplars {
			exs = slices.Clone(exs)
			slices.SortFunc(exs, func(a, b *dto.Exemplar) int {
				return b.GetTimestamp().AsTime().Compare(a.GetTimestamp().AsTime())
			})
			exs = exs[:maxNativeExemplars]
		}
		h.Exemplars = exs
	}
	return h
}

func ptr[T any](v T) *T { return &v }

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// combine applies a gauge policy to the values of several slots.
func combine(pol Policy, vals []float64) float64 {
	r := vals[0]
	for _, v := range vals[1:] {
		switch pol {
		case Max:
			r = math.Max(r, v)
		case Min:
			r = math.Min(r, v)
		default:
			r += v
		}
	}
	return r
}
