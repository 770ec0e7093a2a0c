package framework

import (
	"errors"
	"log/slog"
	"strconv"
	"sync"

	"github.com/broodhq/brood/internal/wire"
)

// agentLink is the master's way to the agent. It keeps every message the
// agent has not yet acknowledged as handled, and while there is no agent
// but one is coming (a restart after a crash, or the swap of a reload) it
// holds what is sent to the agent. The next agent gets all of that first,
// in order, as soon as it is ready, which is after its hooks registered
// their handlers.
//
// The hold and the unacknowledged messages are bounded by limit bytes each
// (half the channel's send queue, so that both fit in the new agent's
// queue: 32 MiB with the default message size). Past the bound, messages for
// the agent are refused: logged and counted by the router, and calls are
// answered at once with an error. Calls are held too, but never handed to a
// second agent once one received them: the link remembers the calls the
// agent has not answered, and when it dies their callers are told at once.
//
// Readers send through the link concurrently; the master's loop attaches
// and detaches agents.
type agentLink struct {
	mu       sync.Mutex
	log      *slog.Logger
	limit    int        // bytes, for the hold and for the unacknowledged
	conn     *wire.Conn // the ready agent, or nil
	pid      int
	holding  bool             // no agent, but one is coming
	unacked  [][]byte         // messages sent to the agent, not yet acknowledged
	unackedN int              // their bytes
	acked    uint64           // the agent's count of handled messages at unacked[0]
	held     [][]byte         // for the next agent
	heldN    int              // their bytes
	refused  int              // refused since the hold began, past its bound
	calls    map[callKey]bool // calls the agent received and has not answered
}

// callKey names a call: its caller and the caller's id for it.
type callKey struct {
	caller int
	id     uint64
}

func (l *agentLink) setup(log *slog.Logger, limit int) {
	l.mu.Lock()
	l.log, l.limit = log, limit
	l.mu.Unlock()
}

// send passes a frame to the agent, or holds it. It returns why it could
// do neither, or "".
func (l *agentLink) send(raw []byte) string {
	msg := wire.KindOf(raw) == wire.KindMessage
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.conn != nil:
		if msg && l.unackedN+len(raw) > l.limit {
			return "the agent is not keeping up: " + strconv.Itoa(l.unackedN) + " bytes of messages not yet handled"
		}
		if err := sendOn(l.conn, raw); err != nil && !errors.Is(err, wire.ErrClosed) {
			return err.Error()
		}
		// A closed channel means the agent has just died and the loop has
		// not heard yet: like every unacknowledged message, this one goes
		// to the next agent, and a call fails when the loop hears.
		l.sent(raw)
		return ""
	case l.holding:
		if l.heldN+len(raw) > l.limit {
			l.refused++
			if l.refused == 1 {
				l.log.Warn("hold for the restarting agent is full: messages for it are refused until it is back",
					"held", len(l.held), "limit_bytes", l.limit)
			}
			return "the agent is restarting and the master's hold for it is full"
		}
		l.held = append(l.held, raw)
		l.heldN += len(raw)
		return ""
	}
	return "there is no agent"
}

// sent records what the current agent was given.
func (l *agentLink) sent(raw []byte) {
	switch wire.KindOf(raw) {
	case wire.KindMessage:
		l.unacked = append(l.unacked, raw)
		l.unackedN += len(raw)
	case wire.KindCall:
		if l.calls == nil {
			l.calls = map[callKey]bool{}
		}
		l.calls[callKey{wire.FromPIDOf(raw), wire.CallIDOf(raw)}] = true
	}
}

// replied forgets a call the agent has answered.
func (l *agentLink) replied(from, caller int, id uint64) {
	l.mu.Lock()
	if from == l.pid {
		delete(l.calls, callKey{caller, id})
	}
	l.mu.Unlock()
}

// ack forgets the messages the agent has handled: n counts every message
// it handled since it started.
func (l *agentLink) ack(pid int, n uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if pid != l.pid || l.conn == nil || n <= l.acked {
		return
	}
	k := int(min(n-l.acked, uint64(len(l.unacked))))
	for i := range k {
		l.unackedN -= len(l.unacked[i])
		l.unacked[i] = nil
	}
	l.unacked = l.unacked[k:]
	l.acked = n
}

// attach makes a ready agent the destination, after handing it what was
// held for it. It returns the calls a previous agent left unanswered, if
// that one's exit was never seen.
func (l *agentLink) attach(conn *wire.Conn, pid int) (unanswered []callKey) {
	l.mu.Lock()
	if l.conn == conn {
		l.mu.Unlock()
		return nil
	}
	if l.conn != nil {
		unanswered = l.requeue()
	}
	held, refused := l.held, l.refused
	l.conn, l.pid, l.holding = conn, pid, false
	l.unacked, l.unackedN, l.acked = nil, 0, 0
	l.held, l.heldN, l.refused = nil, 0, 0
	lost := 0
	for i, raw := range held {
		if err := conn.Send(raw); err != nil {
			lost = len(held) - i
			break
		}
		l.sent(raw)
	}
	l.mu.Unlock()
	switch {
	case lost > 0:
		l.log.Error("held messages not delivered to the new agent", "delivered", len(held)-lost, "lost", lost, "agent_pid", pid)
	case len(held) > 0 || refused > 0:
		l.log.Info("delivered held messages to the new agent", "count", len(held), "refused_past_bound", refused, "agent_pid", pid)
	}
	return unanswered
}

// detach records that there is no ready agent. With hold, one is coming:
// what the old agent did not acknowledge, and what is sent from now on, is
// kept for it. Without, everything kept is dropped and returned, so that
// the caller can log it and answer the calls among it. Either way the
// calls the old agent left unanswered are returned, to be failed.
func (l *agentLink) detach(hold bool) (dropped [][]byte, unanswered []callKey) {
	l.mu.Lock()
	requeued, had := 0, l.conn != nil
	if had {
		requeued = len(l.unacked)
		unanswered = l.requeue()
	}
	began := hold && !l.holding
	l.holding = hold
	if !hold && len(l.held) > 0 {
		dropped = l.held
		l.held, l.heldN, l.refused = nil, 0, 0
	}
	l.mu.Unlock()
	if began {
		l.log.Info("no agent: holding messages for the next one", "requeued_unacknowledged", requeued, "limit_bytes", l.limit)
	}
	return dropped, unanswered
}

// requeue moves the unacknowledged messages of the agent that left to the
// front of the hold, since it may not have handled them, and returns the
// calls it did not answer.
func (l *agentLink) requeue() []callKey {
	l.held = append(l.unacked[:len(l.unacked):len(l.unacked)], l.held...)
	l.heldN += l.unackedN
	unanswered := make([]callKey, 0, len(l.calls))
	for k := range l.calls {
		unanswered = append(unanswered, k)
	}
	l.conn, l.pid = nil, 0
	l.unacked, l.unackedN, l.acked, l.calls = nil, 0, 0, nil
	return unanswered
}
