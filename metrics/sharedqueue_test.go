package metrics

import (
	"testing"
	"time"
)

// Every worker sees the whole queue of the socket they share (balance
// shared): the cluster's gauge is that queue once, not once per worker,
// while each worker's own socket's queue is summed as before.
func TestSharedQueueIsCountedOnce(t *testing.T) {
	p := newFakePeers()
	for i, pid := range []int{10, 11, 12} {
		p.add(pid, string(rune('1'+i))).reg.MustRegister(workerCollector(func() WorkerStats {
			return WorkerStats{Queued: 2, Backlog: 128, HasQueue: true, SharedQueued: 5, SharedBacklog: 4096, HasShared: true}
		}))
	}
	got := gatherSamples(t, p)
	for name, want := range map[string]float64{
		"brood_accept_queue_length": 6, "brood_accept_queue_backlog": 384,
		"brood_accept_queue_shared_length": 5, "brood_accept_queue_shared_backlog": 4096,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	// Without a shared socket the gauges are not there at all.
	q := newFakePeers()
	q.add(10, "1").reg.MustRegister(workerCollector(func() WorkerStats { return WorkerStats{Queued: 1, HasQueue: true} }))
	if v, ok := gatherSamples(t, q)["brood_accept_queue_shared_length"]; ok {
		t.Errorf("brood_accept_queue_shared_length = %v without a shared socket; want it left out", v)
	}
}

// gatherSamples is one scrape of p's workers by an aggregator of its own.
func gatherSamples(t *testing.T, p peers) map[string]float64 {
	t.Helper()
	a := testAggregator(p, time.Second)
	defer a.Stop()
	fams, err := a.Gather(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	return samples(t, fams)
}
