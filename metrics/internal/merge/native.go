package merge

import (
	"math"
	"slices"

	dto "github.com/prometheus/client_model/go"
)

// native is a native (sparse) histogram's buckets, by index, with absolute
// counts.
type native struct {
	schema   int32
	zt, zc   float64 // zero bucket: threshold and count
	pos, neg map[int32]float64
}

// Exponential schemas are -4..8; others (custom buckets) are not merged.
const minSchema, maxSchema = -4, 8

func nativeOf(h *dto.Histogram) *native {
	if h.Schema == nil && len(h.PositiveSpan) == 0 && len(h.NegativeSpan) == 0 && h.ZeroThreshold == nil {
		return nil
	}
	s := h.GetSchema()
	if s < minSchema || s > maxSchema {
		return nil
	}
	n := &native{schema: s, zt: h.GetZeroThreshold(), zc: float64(h.GetZeroCount())}
	if h.ZeroCountFloat != nil && h.GetZeroCountFloat() > 0 {
		n.zc = h.GetZeroCountFloat()
	}
	n.pos = spans(h.PositiveSpan, h.PositiveDelta, h.PositiveCount)
	n.neg = spans(h.NegativeSpan, h.NegativeDelta, h.NegativeCount)
	return n
}

// spans decodes spans with either integer deltas or float counts.
func spans(sp []*dto.BucketSpan, deltas []int64, counts []float64) map[int32]float64 {
	out := map[int32]float64{}
	var idx int32
	var cur int64
	k := 0
	for _, s := range sp {
		idx += s.GetOffset()
		for range s.GetLength() {
			var c float64
			switch {
			case k < len(counts):
				c = counts[k]
			case k < len(deltas):
				cur += deltas[k]
				c = float64(cur)
			}
			k++
			if c != 0 {
				out[idx] += c
			}
			idx++
		}
	}
	return out
}

// addNative sums two native histograms at the coarser of their schemas and
// the wider of their zero buckets.
func addNative(a, b *native) *native {
	r := &native{schema: min(a.schema, b.schema), zt: max(a.zt, b.zt), pos: map[int32]float64{}, neg: map[int32]float64{}}
	for _, h := range []*native{a, b} {
		r.zc += h.zc
		for _, side := range []struct{ from, to map[int32]float64 }{{h.pos, r.pos}, {h.neg, r.neg}} {
			for i, c := range side.from {
				if upperBound(i, h.schema) <= r.zt {
					r.zc += c // inside the wider zero bucket
					continue
				}
				side.to[reduce(i, h.schema, r.schema)] += c
			}
		}
	}
	return r
}

// reduce maps bucket index i of schema from to the bucket of the coarser
// schema to that holds it (each step down merges pairs of buckets).
func reduce(i, from, to int32) int32 {
	if from == to {
		return i
	}
	return ((i - 1) >> (from - to)) + 1
}

// upperBound is the absolute upper bound of bucket i in schema s.
func upperBound(i, s int32) float64 {
	return math.Exp2(float64(i) / math.Exp2(float64(s)))
}

// write stores n in h: spans with deltas (integer counts) or counts.
func (n *native) write(h *dto.Histogram, float bool) {
	h.Schema = ptr(n.schema)
	h.ZeroThreshold = ptr(n.zt)
	if float {
		h.ZeroCountFloat = ptr(n.zc)
	} else {
		h.ZeroCount = ptr(uint64(n.zc))
	}
	h.PositiveSpan, h.PositiveDelta, h.PositiveCount = encodeSpans(n.pos, float)
	h.NegativeSpan, h.NegativeDelta, h.NegativeCount = encodeSpans(n.neg, float)
	if len(h.PositiveSpan) == 0 && len(h.NegativeSpan) == 0 && n.zt == 0 {
		// The no-op span marks an empty native histogram as native.
		h.PositiveSpan = []*dto.BucketSpan{{Offset: ptr(int32(0)), Length: ptr(uint32(0))}}
	}
}

func encodeSpans(buckets map[int32]float64, float bool) ([]*dto.BucketSpan, []int64, []float64) {
	if len(buckets) == 0 {
		return nil, nil, nil
	}
	idx := make([]int32, 0, len(buckets))
	for i := range buckets {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	var (
		sp     []*dto.BucketSpan
		deltas []int64
		counts []float64
		prev   int64
		next   int32 // the index after the current span
	)
	for k, i := range idx {
		if k == 0 || i != next {
			off := i
			if k > 0 {
				off = i - next
			}
			sp = append(sp, &dto.BucketSpan{Offset: ptr(off), Length: ptr(uint32(0))})
		}
		*sp[len(sp)-1].Length++
		next = i + 1
		if float {
			counts = append(counts, buckets[i])
		} else {
			c := int64(buckets[i])
			deltas = append(deltas, c-prev)
			prev = c
		}
	}
	return sp, deltas, counts
}
