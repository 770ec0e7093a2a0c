package master

import "github.com/broodhq/brood/internal/protocol"

// sendShare answers a worker's heartbeat, with balance shared, with the
// workers' fair share of the open connections: the worker accepts from the
// shared socket while it holds fewer (internal/worker's gate). The share
// is the cluster's connections (each worker's most at once since its last
// heartbeat) over its ready workers, rounded up, plus shareSlack: with the
// counts of the last heartbeats, some worker is under it, and one that
// holds more (clients that keep their connections open) leaves the next
// connection to the others. Counts a heartbeat old can leave every worker
// at its share; the worker's gate then takes a connection that waits
// anyway. On the loop.
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
	_ = to.conn.SendFrame(protocol.Control(protocol.Share, protocol.ShareMsg{Conns: (total+n-1)/n + shareSlack}))
}

// shareSlack is how many connections over the fair share a worker may
// take before the gate closes. The counts are the workers' peaks between
// heartbeats (a snapshot of short-lived connections undercounts them: with
// snapshots and a slack of 1 the gate closed under fresh connections and
// their p50 rose from hash's 4 ms to 5-7 ms), so one is enough for the
// worker that takes the next connection while another closes one.
const shareSlack = 1
