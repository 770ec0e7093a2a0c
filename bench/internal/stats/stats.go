// Package stats summarises repeated measurements: the benchmarks report
// medians and spreads, never a single run.
package stats

import (
	"math"
	"slices"
)

// Quantile returns the q-quantile of xs (0 ≤ q ≤ 1) by linear
// interpolation between the closest ranks; NaN for no values.
func Quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	i := int(pos)
	if i >= len(s)-1 {
		return s[len(s)-1]
	}
	return s[i] + (pos-float64(i))*(s[i+1]-s[i])
}

// Median is Quantile(xs, 0.5).
func Median(xs []float64) float64 { return Quantile(xs, 0.5) }

// Summary is the usual report of repeated measurements.
type Summary struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	P90    float64 `json:"p90"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// Summarize describes xs.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	return Summary{N: len(xs), Median: Median(xs), P90: Quantile(xs, 0.9), Min: slices.Min(xs), Max: slices.Max(xs)}
}
