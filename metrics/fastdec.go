package metrics

import (
	"math"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The agent decodes every family that changed in every worker's report: a
// counter family of 10,000 series is 80,000 small allocations through
// proto.Unmarshal, most of the agent's CPU when every series moves.
// decodeSimpleFamily reads what appendSimpleFamily writes (counters,
// gauges, untyped values, as proto.Marshal writes them too) into a few
// slabs; anything else it leaves to proto.Unmarshal.

// simpleCounts counts a family's series and labels, or reports that the
// family is not one decodeSimpleFamily reads.
func simpleCounts(b []byte) (metrics, labels int, ok bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, 0, false
		}
		b = b[n:]
		switch {
		case num == 4 && typ == protowire.BytesType:
			m, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return 0, 0, false
			}
			b = b[n:]
			metrics++
			l, ok := simpleLabels(m)
			if !ok {
				return 0, 0, false
			}
			labels += l
		case (num == 1 || num == 2 || num == 5) && typ == protowire.BytesType, num == 3 && typ == protowire.VarintType:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return 0, 0, false
			}
			b = b[n:]
		default:
			return 0, 0, false
		}
	}
	return metrics, labels, true
}

// simpleLabels counts one series' labels, or reports that it is not one
// decodeSimpleMetric reads.
func simpleLabels(m []byte) (labels int, ok bool) {
	for len(m) > 0 {
		num, typ, k := protowire.ConsumeTag(m)
		if k < 0 {
			return 0, false
		}
		m = m[k:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			labels++
		case (num == 2 || num == 3 || num == 5) && typ == protowire.BytesType, num == 6 && typ == protowire.VarintType:
		default: // a summary, a histogram, or what this version does not know
			return 0, false
		}
		k = protowire.ConsumeFieldValue(num, typ, m)
		if k < 0 {
			return 0, false
		}
		m = m[k:]
	}
	return labels, true
}

// slabs hands out the family's messages from a few allocations.
type slabs struct {
	metrics  []dto.Metric
	mptrs    []*dto.Metric
	labels   []dto.LabelPair
	lptrs    []*dto.LabelPair
	strs     []string
	floats   []float64
	n        int // series
	counters []dto.Counter
	times    []timestamppb.Timestamp
	gauges   []dto.Gauge
}

func (s *slabs) counter(i int) *dto.Counter {
	if s.counters == nil {
		s.counters = make([]dto.Counter, s.n)
	}
	return &s.counters[i]
}

func (s *slabs) time(i int) *timestamppb.Timestamp {
	if s.times == nil {
		s.times = make([]timestamppb.Timestamp, s.n)
	}
	return &s.times[i]
}

func (s *slabs) gauge(i int) *dto.Gauge {
	if s.gauges == nil {
		s.gauges = make([]dto.Gauge, s.n)
	}
	return &s.gauges[i]
}

func (s *slabs) str(v string) *string {
	if len(s.strs) == cap(s.strs) {
		s.strs = make([]string, 0, 64)
	}
	s.strs = append(s.strs, v)
	return &s.strs[len(s.strs)-1]
}

func (s *slabs) float(v float64) *float64 {
	if len(s.floats) == cap(s.floats) {
		s.floats = make([]float64, 0, 64)
	}
	s.floats = append(s.floats, v)
	return &s.floats[len(s.floats)-1]
}

// decodeSimpleFamily decodes b if it is a family of counters, gauges or
// untyped values without exemplars; ok false means "use proto.Unmarshal".
// The strings share one copy of b.
func decodeSimpleFamily(b []byte) (mf *dto.MetricFamily, ok bool) {
	nm, nl, ok := simpleCounts(b)
	if !ok {
		return nil, false
	}
	all := string(b)
	// Every slice below is b re-sliced (protowire keeps the capacity), so
	// a value's offset in b is what its capacity lacks.
	sub := func(v []byte) string {
		off := cap(b) - cap(v)
		return all[off : off+len(v)]
	}
	s := &slabs{
		metrics: make([]dto.Metric, nm), mptrs: make([]*dto.Metric, nm),
		labels: make([]dto.LabelPair, nl), lptrs: make([]*dto.LabelPair, nl),
		strs: make([]string, 0, 2*nl+3), floats: make([]float64, 0, nm), n: nm,
	}
	mf = &dto.MetricFamily{Metric: s.mptrs}
	mi, li := 0, 0
	rest := b
	for len(rest) > 0 {
		num, _, n := protowire.ConsumeTag(rest) // simpleCounts checked the tags
		rest = rest[n:]
		switch num {
		case 1, 2, 5:
			v, n := protowire.ConsumeBytes(rest)
			// Kept by the merger for the family: a copy of its own.
			str := s.str(strings.Clone(sub(v)))
			switch num {
			case 1:
				mf.Name = str
			case 2:
				mf.Help = str
			default:
				mf.Unit = str
			}
			rest = rest[n:]
		case 3:
			v, n := protowire.ConsumeVarint(rest)
			t := dto.MetricType(int32(v))
			mf.Type = &t
			rest = rest[n:]
		case 4:
			v, n := protowire.ConsumeBytes(rest)
			m := &s.metrics[mi]
			s.mptrs[mi] = m
			mi++
			first := li
			if !decodeSimpleMetric(m, mi-1, v, s, &li, sub) {
				return nil, false
			}
			if li > first {
				m.Label = s.lptrs[first:li:li]
			}
			rest = rest[n:]
		default:
			return nil, false
		}
	}
	return mf, true
}

// decodeSimpleMetric decodes one series; sub makes its strings.
func decodeSimpleMetric(m *dto.Metric, i int, b []byte, s *slabs, li *int, sub func([]byte) string) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if num == 6 {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return false
			}
			ts := int64(v)
			m.TimestampMs = &ts
			b = b[n:]
			continue
		}
		if typ != protowire.BytesType {
			return false
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return false
		}
		switch num {
		case 1:
			l := &s.labels[*li]
			s.lptrs[*li] = l
			*li++
			if !decodeLabel(l, v, s, sub) {
				return false
			}
		case 2:
			g := s.gauge(i)
			if !decodeValue(&g.Value, v, s) {
				return false
			}
			m.Gauge = g
		case 3:
			c := s.counter(i)
			if !decodeCounter(c, s.time(i), v, s) {
				return false
			}
			m.Counter = c
		case 5:
			u := &dto.Untyped{}
			if !decodeValue(&u.Value, v, s) {
				return false
			}
			m.Untyped = u
		default:
			return false
		}
		b = b[n:]
	}
	return true
}

func decodeLabel(l *dto.LabelPair, b []byte, s *slabs, sub func([]byte) string) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType || num != 1 && num != 2 {
			return false
		}
		b = b[n:]
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return false
		}
		str := s.str(sub(v))
		if num == 1 {
			l.Name = str
		} else {
			l.Value = str
		}
		b = b[n:]
	}
	return true
}

// decodeValue reads a Gauge or Untyped: field 1, a double.
func decodeValue(dst **float64, b []byte, s *slabs) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num != 1 || typ != protowire.Fixed64Type {
			return false
		}
		v, k := protowire.ConsumeFixed64(b[n:])
		if k < 0 {
			return false
		}
		*dst = s.float(math.Float64frombits(v))
		b = b[n+k:]
	}
	return true
}

func decodeCounter(c *dto.Counter, t *timestamppb.Timestamp, b []byte, s *slabs) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.Fixed64Type:
			v, k := protowire.ConsumeFixed64(b)
			if k < 0 {
				return false
			}
			c.Value = s.float(math.Float64frombits(v))
			b = b[k:]
		case num == 3 && typ == protowire.BytesType:
			v, k := protowire.ConsumeBytes(b)
			if k < 0 {
				return false
			}
			for len(v) > 0 {
				tn, tt, j := protowire.ConsumeTag(v)
				if j < 0 || tt != protowire.VarintType || tn != 1 && tn != 2 {
					return false
				}
				x, i := protowire.ConsumeVarint(v[j:])
				if i < 0 {
					return false
				}
				if tn == 1 {
					t.Seconds = int64(x)
				} else {
					t.Nanos = int32(x)
				}
				v = v[j+i:]
			}
			c.CreatedTimestamp = t
			b = b[k:]
		default: // an exemplar, or what this version does not know
			return false
		}
	}
	return true
}
