package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/broodhq/brood/metrics/internal/merge"
)

// Policy says how the cluster view combines a gauge's values from the
// slots.
type Policy = merge.Policy

// Gauge policies; see the package documentation for the default.
const (
	Sum     = merge.Sum
	Max     = merge.Max
	Min     = merge.Min
	PerSlot = merge.PerSlot // one series per slot, label "slot"
)

// PolicyLabel is the constant label that carries a gauge's policy from the
// process that registers it to the aggregator, which removes it.
const PolicyLabel = merge.PolicyLabel

// Aggregate returns the constant labels that give a gauge the policy p, for
// prometheus.GaugeOpts.ConstLabels:
//
//	promauto.NewGauge(prometheus.GaugeOpts{
//		Name:        "queue_depth",
//		ConstLabels: metrics.Aggregate(metrics.Max),
//	})
//
// To add labels of your own, set PolicyLabel in your map to p.String().
func Aggregate(p Policy) prometheus.Labels {
	return prometheus.Labels{PolicyLabel: p.String()}
}
