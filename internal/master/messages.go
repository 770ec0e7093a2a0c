package master

import (
	"cmp"
	"slices"

	"github.com/broodhq/brood/internal/msglink"
	"github.com/broodhq/brood/internal/protocol"
	"github.com/broodhq/brood/internal/wire"
)

// ctlMembers: master → child, the ready agent and workers (msglink.Members).
const ctlMembers = msglink.CtlMembers

// messagingChanged brings message routing up to date after the ready
// children, the phase or the agent's fate changed: the agent link attaches
// the ready agent or holds its messages, and every child learns the new
// membership. The loop calls it.
func (m *master) messagingChanged() {
	r := &m.router
	r.agent.setup(m.log, wire.QueueLimit(m.cfg.MaxMessage)/2)
	m.publishLive()
	var agent *child
	var apps []*child
	for c := range m.live {
		switch {
		case !c.routable():
		case c.slot == agentSlot:
			agent = c
		default:
			apps = append(apps, c)
		}
	}
	var unanswered []callKey
	if agent != nil && !r.agent.draining(agent.conn) {
		unanswered = r.agent.attach(agent.conn, agent.pid)
		m.pairAll(agent) // direct.go: before the membership that names it
	} else {
		m.directAgent = nil
		// No agent, or one that is stopping and was sent its last frame
		// (agentDraining): it is settled once it has exited.
		var dropped [][]byte
		dropped, unanswered = r.agent.detach(m.agentComing(), agent != nil)
		if len(dropped) > 0 {
			m.dropHeld(dropped, m.phase >= phaseStoppingWorkers)
		}
	}
	for _, k := range unanswered {
		r.failCallTo(k, "the agent exited before it replied; the call may or may not have run")
	}

	slices.SortFunc(apps, func(a, b *child) int { return cmp.Or(cmp.Compare(a.slot, b.slot), cmp.Compare(a.pid, b.pid)) })
	mem := msglink.Members{Apps: make([]int, len(apps)), Relay: m.relay}
	if agent != nil {
		mem.Agent = agent.pid
	} else {
		mem.AgentGone = !m.agentComing()
	}
	for i, c := range apps {
		mem.Apps[i] = c.pid
	}
	if mem.Agent == r.members.Agent && mem.AgentGone == r.members.AgentGone && slices.Equal(mem.Apps, r.members.Apps) {
		return
	}
	r.members = mem
	raw := protocol.Control(ctlMembers, mem).Encode()
	for c := range m.live {
		_ = c.conn.Send(raw)
	}
}

// agentComing reports whether an agent will be ready again: the master
// restarts or replaces it while running, unless it crashed too often.
func (m *master) agentComing() bool {
	st := m.slots[agentSlot]
	return m.phase >= phaseRunning && m.phase < phaseStoppingWorkers && st != nil && st.state != slotGivenUp
}

// dropHeld fails the calls among what was held for an agent that is not
// coming back, and says what was lost; when the cluster is stopping that
// is expected, so it is said at debug level.
func (m *master) dropHeld(dropped [][]byte, stopping bool) {
	calls := 0
	for _, raw := range dropped {
		if wire.KindOf(raw) == wire.KindCall {
			calls++
			m.router.failCall(raw, "no agent is coming back")
		}
	}
	args := []any{"messages", len(dropped) - calls, "calls_failed", calls}
	if !stopping {
		m.log.Warn("dropped what was held for the agent: no agent is coming back", args...)
	} else {
		m.log.Debug("dropped what was held for the agent: stopping", args...)
	}
}

// childStarted tells a child that has just started who is in the cluster,
// so that its hooks can already address the agent, and lets replies reach
// it while its hooks run.
func (m *master) childStarted(ch *child) {
	mem := m.router.members
	mem.Relay = m.relay
	_ = ch.conn.SendFrame(protocol.Control(ctlMembers, mem))
	if ch.slot != agentSlot && m.directAgent != nil {
		m.pair(m.directAgent, ch)
	}
	m.publishLive()
}

// publishLive gives the readers a new map of every live child by pid.
func (m *master) publishLive() {
	live := make(map[int]*wire.Conn, len(m.live))
	for c := range m.live {
		if !c.exited() && c.conn != nil {
			live[c.pid] = c.conn
		}
	}
	m.router.live.Store(&live)
}
