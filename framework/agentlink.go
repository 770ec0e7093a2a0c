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

	// old is an agent being stopped (a reload's swap, the cluster's stop):
	// it gets nothing more, but answers and acknowledges what it was sent
	// before its "drained" frame, so its accounts are kept until it exits.
	old *agentAccount
}

// agentAccount is what the link keeps about an agent it sent frames to.
type agentAccount struct {
	conn     *wire.Conn
	pid      int
	unacked  [][]byte
	unackedN int
	acked    uint64
	calls    map[callKey]bool
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

// replied forgets a call the agent, or the agent being stopped, has
// answered.
func (l *agentLink) replied(from, caller int, id uint64) {
	l.mu.Lock()
	switch {
	case from == l.pid:
		delete(l.calls, callKey{caller, id})
	case l.old != nil && from == l.old.pid:
		delete(l.old.calls, callKey{caller, id})
	}
	l.mu.Unlock()
}

// ack forgets the messages the agent, or the agent being stopped, has
// handled: n counts every message it handled since it started.
func (l *agentLink) ack(pid int, n uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case pid == l.pid && l.conn != nil && n > l.acked:
		k := forget(l.unacked, n-l.acked)
		l.unacked, l.unackedN, l.acked = l.unacked[k.n:], l.unackedN-k.bytes, n
	case l.old != nil && pid == l.old.pid && n > l.old.acked:
		o := l.old
		k := forget(o.unacked, n-o.acked)
		o.unacked, o.unackedN, o.acked = o.unacked[k.n:], o.unackedN-k.bytes, n
	}
}

// forget releases the first n (at most) of unacked, and says how many
// messages and bytes that was.
func forget(unacked [][]byte, n uint64) (k struct{ n, bytes int }) {
	k.n = int(min(n, uint64(len(unacked))))
	for i := range k.n {
		k.bytes += len(unacked[i])
		unacked[i] = nil
	}
	return k
}

// draining reports whether conn is the agent being stopped (drain).
func (l *agentLink) draining(conn *wire.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.old != nil && l.old.conn == conn
}

// drain takes the agent conn out of the way when it asks, stopping: what
// is sent from now on is held for the next agent (with hold) or refused, so
// that the "drained" frame the master sends next is the last thing the
// agent gets, and everything before it the agent answers before it exits. Its unanswered calls and unacknowledged messages are kept until
// the link hears that it exited (detach). An agent that is not the current
// one is left alone.
func (l *agentLink) drain(conn *wire.Conn, hold bool) {
	l.mu.Lock()
	if l.conn != conn || conn == nil {
		l.mu.Unlock()
		return
	}
	l.settleOld() // an earlier agent still stopping: its exit was not seen
	l.old = &agentAccount{conn: l.conn, pid: l.pid, unacked: l.unacked, unackedN: l.unackedN, acked: l.acked, calls: l.calls}
	l.conn, l.pid = nil, 0
	l.unacked, l.unackedN, l.acked, l.calls = nil, 0, 0, nil
	began := hold && !l.holding
	l.holding = hold
	pid := l.old.pid
	l.mu.Unlock()
	if began {
		l.log.Info("agent stopping: holding messages for the next one", "agent_pid", pid, "limit_bytes", l.limit)
	}
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
	unanswered = append(unanswered, l.settleOld()...)
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
// calls the old agent left unanswered are returned, to be failed. An agent
// being stopped (drain) is settled the same way once it has exited, that
// is when oldAlive is false.
func (l *agentLink) detach(hold, oldAlive bool) (dropped [][]byte, unanswered []callKey) {
	l.mu.Lock()
	requeued, had := 0, l.conn != nil
	if had {
		requeued = len(l.unacked)
		unanswered = l.requeue()
	}
	if l.old != nil && !oldAlive {
		requeued += len(l.old.unacked)
		unanswered = append(unanswered, l.settleOld()...)
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
	unanswered := l.requeueFrom(l.unacked, l.unackedN, l.calls)
	l.conn, l.pid = nil, 0
	l.unacked, l.unackedN, l.acked, l.calls = nil, 0, 0, nil
	return unanswered
}

// settleOld does requeue's work for the agent that was being stopped, now
// gone: what it did not acknowledge goes to the front of the hold (it was
// sent before anything held since), and its unanswered calls are returned.
func (l *agentLink) settleOld() []callKey {
	o := l.old
	if o == nil {
		return nil
	}
	l.old = nil
	return l.requeueFrom(o.unacked, o.unackedN, o.calls)
}

func (l *agentLink) requeueFrom(unacked [][]byte, n int, calls map[callKey]bool) []callKey {
	l.held = append(unacked[:len(unacked):len(unacked)], l.held...)
	l.heldN += n
	unanswered := make([]callKey, 0, len(calls))
	for k := range calls {
		unanswered = append(unanswered, k)
	}
	return unanswered
}
