package merge

import (
	"fmt"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// Policy says how the cluster view combines one gauge's slots.
type Policy uint8

// Gauge policies. Default is Sum, except for the few standard gauges
// listed in defaults.
const (
	Default Policy = iota
	Sum
	Max
	Min
	PerSlot // one series per slot, label "slot"
)

// PolicyLabel is the constant label that picks a gauge's policy; the
// Merger removes it from what it shows.
const PolicyLabel = "brood_aggregate"

var policyNames = map[string]Policy{"sum": Sum, "max": Max, "min": Min, "slot": PerSlot}

func (p Policy) String() string {
	for name, q := range policyNames {
		if q == p {
			return name
		}
	}
	return "default"
}

// ParsePolicy reads a policy name: sum, max, min or slot.
func ParsePolicy(s string) (Policy, error) {
	if p, ok := policyNames[s]; ok {
		return p, nil
	}
	return Default, fmt.Errorf("gauge policy %q: want sum, max, min or slot", s)
}

// defaults are the standard client_golang gauges that a sum would make
// meaningless.
var defaults = map[string]Policy{
	"process_start_time_seconds":       Min, // the oldest process: when the cluster started
	"process_max_fds":                  Min,
	"process_virtual_memory_max_bytes": Min,
	"go_gc_gogc_percent":               Max,
}

// resolvePolicy is the policy of gauge name whose label asked for p.
func resolvePolicy(name string, p Policy) Policy {
	if p != Default {
		return p
	}
	if d, ok := defaults[name]; ok {
		return d
	}
	if strings.HasSuffix(name, "_info") {
		return Max // an info metric is 1 with labels, whatever the slot
	}
	return Sum
}

// splitPolicy removes the policy label from labels; an unknown value
// counts as Default (and the label is still removed).
func splitPolicy(labels []*dto.LabelPair) ([]*dto.LabelPair, Policy) {
	i := slices.IndexFunc(labels, func(l *dto.LabelPair) bool { return l.GetName() == PolicyLabel })
	if i < 0 {
		return labels, Default
	}
	p := policyNames[labels[i].GetValue()]
	out := make([]*dto.LabelPair, 0, len(labels)-1)
	out = append(out, labels[:i]...)
	return append(out, labels[i+1:]...), p
}
