package loadgen

import (
	"math/bits"
	"time"
)

// histogram counts durations in log-linear buckets, the way HdrHistogram
// does: 64 buckets per power of two, so a reported percentile is within
// 1/64 (1.6%) of the true value, in a fixed 30 KB whatever the run length.
type histogram struct {
	counts [bucketCount]uint64
	total  uint64
	max    time.Duration
}

const (
	subBits     = 7 // values below 1<<subBits ns get a bucket each
	half        = 1 << (subBits - 1)
	bucketCount = (64-subBits+1)*half + half
)

func bucketOf(v uint64) int {
	shift := bits.Len64(v) - subBits
	if shift <= 0 {
		return int(v)
	}
	return shift*half + int(v>>shift)
}

// bucketValue is the middle of bucket i, in nanoseconds.
func bucketValue(i int) uint64 {
	if i < 1<<subBits {
		return uint64(i)
	}
	shift := (i - half) / half
	mant := uint64(i - shift*half)
	return mant<<shift + (uint64(1)<<shift)/2
}

func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.total++
	if d > h.max {
		h.max = d
	}
}

func (h *histogram) merge(o *histogram) {
	for i, n := range o.counts {
		h.counts[i] += n
	}
	h.total += o.total
	h.max = max(h.max, o.max)
}

// quantile returns the smallest recorded value v (to the bucket's
// precision) such that at least q of all values are at most v.
func (h *histogram) quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q*float64(h.total) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i, n := range h.counts {
		seen += n
		if seen >= rank {
			return min(time.Duration(bucketValue(i)), h.max)
		}
	}
	return h.max
}
