package master

import "github.com/broodhq/brood/internal/protocol"

// sendShare answers a worker's heartbeat, with balance shared, with the
// workers' fair share of the open connections: the worker accepts from the
// shared socket while it holds fewer (internal/worker's gate). The share
// is the cluster's connections over its ready workers, rounded up, plus
// one: with the counts of the last heartbeats, some worker is under it, and
// one that holds more (clients that keep their connections open) leaves
// the next connection to the others. Counts a heartbeat old can leave every
// worker at its share; the worker's gate then takes a connection that
// waits anyway. On the loop.
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
