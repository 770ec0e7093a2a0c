package master

import "github.com/broodhq/brood/internal/protocol"

// sendShare answers a worker's heartbeat, with balance shared, with the
// workers' fair share of the open connections: the worker accepts from the
// shared socket while it holds fewer (internal/worker's gate). The share
// is the cluster's connections over its ready workers, rounded up, plus
// one: however stale the counts, some worker is under its share, and one
// that holds more (clients that keep their connections open) leaves the
// next connection to the others. On the loop.
func (m *master) sendShare(to *child) {
	var total, n int64
	for c := range m.live {
		if c.slot != agentSlot && c.state == childReady {
			total += c.conns
			n++
		}
	}
	if n == 0 {
		return
	}
	_ = to.conn.SendFrame(protocol.Control(protocol.Share, protocol.ShareMsg{Conns: (total+n-1)/n + 1}))
}
