package metrics

import (
	"math"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protowire"
)

// A worker encodes its families at every report; families of counters,
// gauges and untyped values (most of a large registry) are encoded here by
// hand, in the bytes proto.Marshal writes (the fields in number order),
// at a fraction of its cost: it had been a fifth of a worker's CPU in a
// scrape. Histograms, summaries and exemplars go through proto. Unknown
// fields are left out: the agent merges known fields only.

// simpleFamily reports whether appendSimpleFamily can encode mf.
func simpleFamily(mf *dto.MetricFamily) bool {
	for _, m := range mf.Metric {
		if m == nil || m.Summary != nil || m.Histogram != nil || m.Counter != nil && m.Counter.Exemplar != nil {
			return false
		}
	}
	return true
}

// sizeBytes: a length-delimited field's size (every field number here is
// below 16: a one-byte tag).
func sizeBytes(n int) int { return protowire.SizeTag(1) + protowire.SizeBytes(n) }

func sizeString(s *string) int {
	if s == nil {
		return 0
	}
	return sizeBytes(len(*s))
}

func sizeDouble(v *float64) int {
	if v == nil {
		return 0
	}
	return 1 + 8
}

func labelSize(l *dto.LabelPair) int { return sizeString(l.Name) + sizeString(l.Value) }

func counterSize(c *dto.Counter) int {
	n := sizeDouble(c.Value)
	if t := c.CreatedTimestamp; t != nil {
		n += sizeBytes(timestampSize(t.Seconds, t.Nanos))
	}
	return n
}

// timestampSize: google.protobuf.Timestamp is proto3, zero fields are not
// written.
func timestampSize(sec int64, nanos int32) int {
	n := 0
	if sec != 0 {
		n += 1 + protowire.SizeVarint(uint64(sec))
	}
	if nanos != 0 {
		n += 1 + protowire.SizeVarint(uint64(int64(nanos)))
	}
	return n
}

func metricSize(m *dto.Metric) int {
	n := 0
	for _, l := range m.Label {
		n += sizeBytes(labelSize(l))
	}
	if m.Gauge != nil {
		n += sizeBytes(sizeDouble(m.Gauge.Value))
	}
	if m.Counter != nil {
		n += sizeBytes(counterSize(m.Counter))
	}
	if m.Untyped != nil {
		n += sizeBytes(sizeDouble(m.Untyped.Value))
	}
	if m.TimestampMs != nil {
		n += 1 + protowire.SizeVarint(uint64(*m.TimestampMs))
	}
	return n
}

func simpleFamilySize(mf *dto.MetricFamily) int {
	n := sizeString(mf.Name) + sizeString(mf.Help) + sizeString(mf.Unit)
	if mf.Type != nil {
		n += 1 + protowire.SizeVarint(uint64(int64(*mf.Type)))
	}
	for _, m := range mf.Metric {
		n += sizeBytes(metricSize(m))
	}
	return n
}

func appendString(b []byte, num protowire.Number, s *string) []byte {
	if s == nil {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, *s)
}

func appendDouble(b []byte, num protowire.Number, v *float64) []byte {
	if v == nil {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, math.Float64bits(*v))
}

func appendValue(b []byte, num protowire.Number, v *float64) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(sizeDouble(v)))
	return appendDouble(b, 1, v)
}

// appendSimpleFamily appends mf's encoding, as proto.Marshal writes it, if
// simpleFamily(mf).
func appendSimpleFamily(b []byte, mf *dto.MetricFamily) []byte {
	b = appendString(b, 1, mf.Name)
	b = appendString(b, 2, mf.Help)
	if mf.Type != nil {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(*mf.Type)))
	}
	for _, m := range mf.Metric {
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(metricSize(m)))
		for _, l := range m.Label {
			b = protowire.AppendTag(b, 1, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(labelSize(l)))
			b = appendString(b, 1, l.Name)
			b = appendString(b, 2, l.Value)
		}
		if m.Gauge != nil {
			b = appendValue(b, 2, m.Gauge.Value)
		}
		if c := m.Counter; c != nil {
			b = protowire.AppendTag(b, 3, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(counterSize(c)))
			b = appendDouble(b, 1, c.Value)
			if t := c.CreatedTimestamp; t != nil {
				b = protowire.AppendTag(b, 3, protowire.BytesType)
				b = protowire.AppendVarint(b, uint64(timestampSize(t.Seconds, t.Nanos)))
				if t.Seconds != 0 {
					b = protowire.AppendTag(b, 1, protowire.VarintType)
					b = protowire.AppendVarint(b, uint64(t.Seconds))
				}
				if t.Nanos != 0 {
					b = protowire.AppendTag(b, 2, protowire.VarintType)
					b = protowire.AppendVarint(b, uint64(int64(t.Nanos)))
				}
			}
		}
		if m.Untyped != nil {
			b = appendValue(b, 5, m.Untyped.Value)
		}
		if m.TimestampMs != nil {
			b = protowire.AppendTag(b, 6, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(*m.TimestampMs))
		}
	}
	return appendString(b, 5, mf.Unit)
}
