package fleet

import "github.com/prometheus/client_golang/prometheus"

var (
	descHeld    = prometheus.NewDesc("brood_fleet_lease_held", "1 while this host holds the fleet's lease and runs its OncePerFleet jobs.", nil, nil)
	descEpoch   = prometheus.NewDesc("brood_fleet_epoch", "The highest fencing epoch of the fleet's lease this host has seen.", nil, nil)
	descUp      = prometheus.NewDesc("brood_fleet_redis_up", "0 while the fleet's Redis does not answer: fleet jobs pause and fleet messages wait.", nil, nil)
	descBacklog = prometheus.NewDesc("brood_fleet_backlog", "Fleet messages waiting for Redis in this host's agent.", nil, nil)
)

// collector exposes the fleet's state in the agent's metrics, which the
// cluster's /metrics includes.
type collector struct{ f *Fleet }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descHeld
	ch <- descEpoch
	ch <- descUp
	ch <- descBacklog
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	held, _, down := c.f.l.state()
	c.f.l.mu.Lock()
	seen := c.f.l.seen
	c.f.l.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descHeld, prometheus.GaugeValue, b2f(held))
	ch <- prometheus.MustNewConstMetric(descEpoch, prometheus.GaugeValue, float64(seen))
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, b2f(!down))
	ch <- prometheus.MustNewConstMetric(descBacklog, prometheus.GaugeValue, float64(len(c.f.out)))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
