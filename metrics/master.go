package metrics

import (
	"sort"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// MasterStats is what the master counts, sent to the agent every
// housekeeping tick (framework.Run wires it): totals since the master
// started.
type MasterStats struct {
	WorkersReady, WorkersWanted int
	Reloads                     map[string]uint64 // by result: ok, rolled_back, failed, refused
	Rollbacks                   uint64
	Slots                       map[int]SlotStats // by slot; 0 is the agent
}

// SlotStats is one slot's counts in MasterStats.
type SlotStats struct {
	Restarts  uint64 // after an unexpected exit
	HangKills uint64 // replaced as hung (WithHangTimeout)
	Recycles  uint64 // replaced after WithMaxRequests or over WithMaxRSS
}

var (
	descReady = prometheus.NewDesc("brood_workers_ready",
		"Workers ready to serve, as the master sees them.", nil, nil)
	descWanted = prometheus.NewDesc("brood_workers_wanted",
		"Workers the master runs or restarts.", nil, nil)
	descReloads = prometheus.NewDesc("brood_reloads_total",
		"Rolling reloads, by result: ok, rolled_back, failed (the rollback failed too), refused (the executable could not be opened).", []string{"result"}, nil)
	descRollbacks = prometheus.NewDesc("brood_rollbacks_total",
		"Reloads that began rolling back to the previous generation.", nil, nil)
	descRestarts = prometheus.NewDesc("brood_restarts_total",
		"Restarts after an unexpected exit, by process: the agent, or a worker's slot.", []string{"process"}, nil)
	descHangKills = prometheus.NewDesc("brood_hang_kills_total",
		"Workers replaced as hung, by slot.", []string{"process"}, nil)
	descRecycles = prometheus.NewDesc("brood_recycles_total",
		"Workers replaced after their maximum requests or over their memory limit, by slot.", []string{"process"}, nil)
)

// RegisterMaster registers, in prometheus.DefaultRegisterer, the master's
// counts, read from stats at each gather (ok false: none received yet,
// nothing is shown). framework.Run calls it in the agent.
func RegisterMaster(stats func() (MasterStats, bool)) error {
	return register(collectorFunc{
		descs: []*prometheus.Desc{descReady, descWanted, descReloads, descRollbacks, descRestarts, descHangKills, descRecycles},
		collect: func(ch chan<- prometheus.Metric) {
			s, ok := stats()
			if !ok {
				return
			}
			ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, float64(s.WorkersReady))
			ch <- prometheus.MustNewConstMetric(descWanted, prometheus.GaugeValue, float64(s.WorkersWanted))
			for _, result := range []string{"ok", "rolled_back", "failed", "refused"} {
				ch <- prometheus.MustNewConstMetric(descReloads, prometheus.CounterValue, float64(s.Reloads[result]), result)
			}
			ch <- prometheus.MustNewConstMetric(descRollbacks, prometheus.CounterValue, float64(s.Rollbacks))
			slots := make([]int, 0, len(s.Slots))
			for slot := range s.Slots {
				slots = append(slots, slot)
			}
			sort.Ints(slots)
			for _, slot := range slots {
				st := s.Slots[slot]
				name := strconv.Itoa(slot)
				if slot == 0 {
					name = AgentSlot
					ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(st.Restarts), name)
					continue
				}
				ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(st.Restarts), name)
				ch <- prometheus.MustNewConstMetric(descHangKills, prometheus.CounterValue, float64(st.HangKills), name)
				ch <- prometheus.MustNewConstMetric(descRecycles, prometheus.CounterValue, float64(st.Recycles), name)
			}
		},
	})
}
