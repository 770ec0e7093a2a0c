package master

import (
	"github.com/broodhq/brood/internal/msglink"
	"github.com/broodhq/brood/internal/protocol"
	"github.com/broodhq/brood/internal/wire"
)

// EnvRelay, set to 1 in the master's environment, keeps the agent's traffic
// on the route through the master that brood used before direct channels:
// for benchmarks that compare the two.
const EnvRelay = "BROOD_MESSENGER_RELAY"

// Direct channels: the master makes a socketpair for each worker and the
// ready agent and passes one end to each over their channels
// (msglink.CtlDirect, SCM_RIGHTS). Then they talk over it and the master
// is off that path; it stays the authority on who is in the cluster.

// pairAll gives every live worker a channel to a newly ready agent. The
// loop calls it before it announces the membership that names the agent,
// so that the agent's end arrives first on each channel.
func (m *master) pairAll(agent *child) {
	if m.relay || m.directAgent == agent || agent.hung {
		return // a hung agent is about to be killed (agentHung)
	}
	m.directAgent = agent
	for c := range m.live {
		if c.slot != agentSlot && !c.exited() && c.conn != nil {
			m.pair(agent, c)
		}
	}
}

// pair passes the two ends of a new socketpair to the agent and a worker.
func (m *master) pair(agent, w *child) {
	a, b, err := wire.Pair()
	if err != nil {
		w.log.Error("no direct channel to the agent: its messages for the agent are held", "err", err)
		return
	}
	toAgent := protocol.Control(msglink.CtlDirect, msglink.Direct{Peer: w.pid}).Encode()
	toWorker := protocol.Control(msglink.CtlDirect, msglink.Direct{Peer: agent.pid}).Encode()
	if err := agent.conn.SendFD(toAgent, a); err != nil {
		b.Close()
		agent.log.Debug("direct channel not passed to the agent", "worker_pid", w.pid, "err", err)
		return
	}
	if err := w.conn.SendFD(toWorker, b); err != nil {
		w.log.Debug("direct channel not passed to the worker", "err", err)
	}
}

// directReset: the agent reset its channel to a worker (a malformed frame,
// or the worker's end closed); if the worker is still live, the two get a
// new pair.
func (m *master) directReset(ch *child, f wire.Frame) {
	var d msglink.Direct
	if ch != m.directAgent || !m.decode(ch, f, &d) {
		return
	}
	for c := range m.live {
		// A worker that was told to stop closes its channel itself.
		if c.pid == d.Peer && c.slot != agentSlot && (c.state == childStarting || c.state == childReady) && c.conn != nil {
			c.log.Info("direct channel to the agent reset: passing a new one")
			m.pair(ch, c)
			return
		}
	}
}
