package framework

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"

	"github.com/broodhq/brood/internal/msglink"
	"github.com/broodhq/brood/internal/wire"
	"github.com/broodhq/brood/messenger"
)

// Bounds of WithMaxMessageSize. The frame's length field has 32 bits, and
// a limit under a kilobyte would refuse ordinary messages.
const (
	MinMessageSize = 1 << 10
	MaxMessageSize = 1 << 30
)

// WithMaxMessageSize bounds the encoded data of one message, call or reply
// (default 16 MiB). A larger one is refused by its sender with
// messenger.ErrTooLarge; a frame over the limit from a child is treated as
// malformed and resets that child's channel.
func WithMaxMessageSize(n int) Option {
	return func(c *config) { c.maxMessage = n; c.source["max_message"] = "code" }
}

func (c *config) validateMessaging() []error {
	if c.source["max_message"] == "" {
		return nil
	}
	if c.maxMessage < MinMessageSize || c.maxMessage > MaxMessageSize {
		return []error{&ConfigError{"WithMaxMessageSize", strconv.Itoa(c.maxMessage),
			fmt.Sprintf("want a size in bytes from %d (1 KiB) to %d (1 GiB)", MinMessageSize, MaxMessageSize), nil}}
	}
	return nil
}

// ctlMembers: master → child, the ready agent and workers (msglink.Members).
const ctlMembers = msglink.CtlMembers

// messagingChanged brings message routing up to date after the ready
// children, the phase or the agent's fate changed: the agent link attaches
// the ready agent or holds its messages, and every child learns the new
// membership. The loop calls it.
func (m *master) messagingChanged() {
	r := &m.router
	r.agent.setup(m.log, wire.QueueLimit(m.cfg.maxMessage)/2)
	m.publishLive()
	var agent *child
	var apps []*child
	for c := range m.live {
		switch {
		case !c.ready || c.exited:
		case c.slot == agentSlot:
			agent = c
		default:
			apps = append(apps, c)
		}
	}
	var unanswered []callKey
	if agent != nil && !r.agent.draining(agent.conn) {
		unanswered = r.agent.attach(agent.conn, agent.pid)
	} else {
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
	mem := msglink.Members{Apps: make([]int, len(apps))}
	if agent != nil {
		mem.Agent = agent.pid
	}
	for i, c := range apps {
		mem.Apps[i] = c.pid
	}
	if mem.Agent == r.members.Agent && slices.Equal(mem.Apps, r.members.Apps) {
		return
	}
	r.members = mem
	raw := control(ctlMembers, mem).Encode()
	for c := range m.live {
		_ = c.conn.Send(raw)
	}
}

// agentComing reports whether an agent will be ready again: the master
// restarts or replaces it while running, unless it crashed too often.
func (m *master) agentComing() bool {
	st := m.slots[agentSlot]
	return m.phase >= phaseRunning && m.phase < phaseStoppingWorkers && st != nil && !st.givenUp
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
	_ = ch.conn.SendFrame(control(ctlMembers, m.router.members))
	m.publishLive()
}

// publishLive gives the readers a new map of every live child by pid.
func (m *master) publishLive() {
	live := make(map[int]*wire.Conn, len(m.live))
	for c := range m.live {
		if !c.exited && c.conn != nil {
			live[c.pid] = c.conn
		}
	}
	m.router.live.Store(&live)
}

// openMessenger makes this child's Messenger, before the reader starts so
// that no frame arrives without one.
func (ch *channel) openMessenger() {
	role := wire.RoleApp
	if os.Getenv(envRole) == "agent" {
		role = wire.RoleAgent
	}
	link := &msglink.Link{Conn: ch.conn, Role: role}
	ch.msgr = messenger.New(messenger.Config{Logger: ch.log, Link: link})
	ch.msgs = link.Endpoint
}

// toMessenger gives the messenger what is its own, from the reader: every
// frame that is not control, and the membership. It reports whether it
// took f; cluster-ready it only looks at, because the role's loop needs it
// too.
func (ch *channel) toMessenger(f wire.Frame) bool {
	switch {
	case f.Kind != wire.KindControl:
		ch.msgs.Deliver(f)
		return true
	case f.Action == ctlMembers:
		var mem msglink.Members
		if err := json.Unmarshal(f.Data, &mem); err != nil {
			ch.log.Error("bad membership from the master", "err", err)
		} else {
			ch.msgs.Members(mem)
		}
		return true
	case f.Action == ctlClusterReady:
		ch.msgs.ClusterReady()
	}
	return false
}

// leaveMessaging, at the agent's stop, asks the master to send nothing more
// and waits, until ctx ends or the master is gone, for its "drained": every
// frame for this agent came before it.
func (ch *channel) leaveMessaging(ctx context.Context) {
	ch.send(control(ctlDraining, nil))
	for {
		select {
		case f := <-ch.control:
			if f.Action == ctlDrained {
				return
			}
		case <-ch.closed:
			return
		case <-ctx.Done():
			ch.log.Debug("the master did not confirm the drain before the stop timeout", "err", context.Cause(ctx))
			return
		}
	}
}

// drainMessenger, at the agent's stop, answers every call and handles every
// message the agent was sent (leaveMessaging made that a closed set),
// before its OnStop hooks close what the handlers use.
func (ch *channel) drainMessenger(ctx context.Context) {
	if err := ch.msgs.Drain(ctx); err != nil {
		ch.log.Warn("message handlers still running at stop", "err", err)
	}
}

// closeMessenger, at stop, fails the calls still waiting and waits for
// running handlers until ctx ends.
func (ch *channel) closeMessenger(ctx context.Context) {
	if err := ch.msgs.Close(ctx); err != nil {
		ch.log.Warn("message handlers still running at stop", "err", err)
	}
}

// disconnectMessenger, when the reader ends, fails the calls still waiting:
// no reply can come any more.
func (ch *channel) disconnectMessenger() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = ch.msgs.Close(ctx)
}
