package master

import (
	"syscall"
	"time"

	"github.com/broodhq/brood/internal/protocol"
)

// stop begins stopping the cluster. A graceful stop lets workers finish
// their requests within the shutdown timeout, then stops the agent; a fast
// stop tells everyone at once to stop now.
func (m *master) stop(graceful bool) {
	if m.phase >= phaseStoppingWorkers && !m.graceful {
		return // already stopping fast
	}
	for _, st := range m.slots {
		if st.state == slotRestarting {
			st.state = slotEmpty // its restart event finds nothing to do
		}
		st.answer(false, errStopping.Error())
	}
	m.ops.clear()
	m.notifyStopping()
	for c := range m.live {
		if c.slot == agentSlot {
			_ = c.conn.SendFrame(protocol.Control(protocol.ClusterStopping, nil))
		}
	}
	m.graceful = graceful
	if !graceful {
		m.phase = phaseStoppingWorkers
		for c := range m.live {
			m.stopChild(c, 0, fastStopGrace)
		}
		return
	}
	m.log.Info("stopping gracefully", "timeout", m.cfg.ShutdownTimeout.String())
	m.phase = phaseStoppingWorkers
	for c := range m.live {
		if c.slot != agentSlot {
			m.stopChild(c, m.cfg.ShutdownTimeout, m.cfg.ShutdownTimeout+killGrace)
		}
	}
	if m.workersLeft() == 0 {
		m.stopAgent()
	}
}

// stopAgent stops every agent still running: the current one, and during
// a reload's swap the successor starting (the one stopping already was).
func (m *master) stopAgent() {
	m.phase = phaseStoppingAgent
	for c := range m.live {
		if c.slot == agentSlot && c.state != childExited && c.state != childDraining {
			m.stopChild(c, m.cfg.ShutdownTimeout, m.cfg.ShutdownTimeout+killGrace)
		}
	}
}

// agentDraining answers a stopping agent that has stopped its jobs and is
// about to stop its handlers: from now on nothing is sent to it (calls and
// messages wait for the next agent, if one is coming; agentlink.go), and
// "drained" tells it that what it has received is all it will get. It then
// answers all of that before its OnStop hooks run and exits, so a reload's
// agent swap fails no call.
func (m *master) agentDraining(c *child) {
	if c.slot != agentSlot || c.exited() {
		return
	}
	c.state = childDraining // also when it was sent SIGTERM by someone else
	if m.directAgent == c {
		m.directAgent = nil // workers starting from now on wait for the next agent
	}
	// A no-op unless c is the agent the link sends to; the agent waits for
	// "drained" either way.
	for _, k := range m.router.agent.drain(c.conn, m.agentComing()) {
		m.router.failCallTo(k, "the agent exited before it replied; the call may or may not have run")
	}
	_ = c.conn.SendFrame(protocol.Control(protocol.Drained, nil))
}

func (m *master) stopChild(c *child, timeout, killAfter time.Duration) {
	c.state = childDraining
	// Until the cluster stops, what a child leaves is taken over; but a
	// hung worker's idle clients are better off reconnecting elsewhere than
	// sending it their next request.
	if err := c.conn.SendFrame(protocol.StopFrame(timeout, m.phase < phaseStoppingWorkers && !c.hung)); err != nil {
		// The channel is gone; a signal still reaches the child.
		_ = c.proc.Signal(syscall.SIGTERM)
	}
	m.clock.AfterFunc(killAfter, func() { m.post(event{kind: evKill, child: c}) })
}
