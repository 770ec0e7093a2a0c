package master

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
	mu      sync.Mutex
	log     *slog.Logger
	limit   int          // bytes, for the hold and for the unacknowledged
	cur     agentAccount // the ready agent; conn nil when there is none
	holding bool         // no agent, but one is coming
	held    [][]byte     // for the next agent
	heldN   int          // their bytes
	refused int          // refused since the hold began, past its bound

	// old is an agent being stopped (a reload's swap, the cluster's stop):
	// it gets nothing more, but answers and acknowledges what it was sent
	// before its "drained" frame, so its account is kept until it exits.
	old *agentAccount
}

// agentAccount is what the link keeps about an agent it sends frames to.
type agentAccount struct {
	conn     *wire.Conn
	pid      int
	unacked  [][]byte           // messages sent to the agent, not yet acknowledged
	unackedN int                // their bytes
	acked    uint64             // the agent's count of handled messages at unacked[0]
	calls    map[callKey][]byte // calls the agent received and has not answered
	handed   [][]byte           // calls a hung agent handed back (handOver), for the next
	handedN  int                // their bytes
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
	case l.cur.conn != nil:
		if msg && l.cur.unackedN+len(raw) > l.limit {
			return "the agent is not keeping up: " + strconv.Itoa(l.cur.unackedN) + " bytes of messages not yet handled"
		}
		if err := sendOn(l.cur.conn, raw); err != nil && !errors.Is(err, wire.ErrClosed) {
			return err.Error()
		}
		// A closed channel means the agent has just died and the loop has
		// not heard yet: like every unacknowledged message, this one goes
		// to the next agent, and a call fails when the loop hears.
		l.cur.sent(raw)
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

// sent records what the agent was given.
func (a *agentAccount) sent(raw []byte) {
	switch wire.KindOf(raw) {
	case wire.KindMessage:
		a.unacked = append(a.unacked, raw)
		a.unackedN += len(raw)
	case wire.KindCall:
		if a.calls == nil {
			a.calls = map[callKey][]byte{}
		}
		a.calls[callKey{wire.FromPIDOf(raw), wire.CallIDOf(raw)}] = raw // kept for a hand-over
	}
}

// account is the account of the agent with pid, the current one or the one
// being stopped, or nil.
func (l *agentLink) account(pid int) *agentAccount {
	switch {
	case l.cur.conn != nil && pid == l.cur.pid:
		return &l.cur
	case l.old != nil && pid == l.old.pid:
		return l.old
	}
	return nil
}

// replied forgets a call the agent, or the agent being stopped, has
// answered.
func (l *agentLink) replied(from, caller int, id uint64) {
	l.mu.Lock()
	if a := l.account(from); a != nil {
		delete(a.calls, callKey{caller, id})
	}
	l.mu.Unlock()
}

// handOver takes back call k, which the hung agent from did not start
// (msglink.CodeHandOver, relay mode), to hand it to the next agent with
// what it did not acknowledge. It returns why it cannot, or "": the call
// was made to that agent's pid, or the hold is full.
func (l *agentLink) handOver(from int, k callKey) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.account(from)
	if a == nil {
		return "the agent is gone"
	}
	raw, ok := a.calls[k]
	if !ok {
		return "the agent did not have the call"
	}
	delete(a.calls, k)
	switch {
	case wire.RouteOf(raw) != wire.ToAgent:
		return "the agent is hung and did not start the call, which was made to its pid"
	case l.heldN+a.handedN+len(raw) > l.limit:
		return "the agent is hung and did not start the call, and the master's hold for the next agent is full"
	}
	a.handed = append(a.handed, raw)
	a.handedN += len(raw)
	return ""
}

// ack forgets the messages the agent, or the agent being stopped, has
// handled: n counts every message it handled since it started.
func (l *agentLink) ack(pid int, n uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.account(pid)
	if a == nil || n <= a.acked {
		return
	}
	k := int(min(n-a.acked, uint64(len(a.unacked))))
	for i := range k {
		a.unackedN -= len(a.unacked[i])
		a.unacked[i] = nil
	}
	a.unacked, a.acked = a.unacked[k:], n
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
// agent gets, and everything before it the agent answers before it exits.
// Its unanswered calls and unacknowledged messages are kept until the link
// hears that it exited (detach). An agent that is not the current
// one is left alone. It returns the calls an earlier stopping agent left
// unanswered, if that one's exit was never seen.
func (l *agentLink) drain(conn *wire.Conn, hold bool) (unanswered []callKey) {
	l.mu.Lock()
	if l.cur.conn != conn || conn == nil {
		l.mu.Unlock()
		return nil
	}
	unanswered = l.settle(l.old) // an earlier agent still stopping: its exit was not seen
	old := l.cur
	l.old, l.cur = &old, agentAccount{}
	began := hold && !l.holding
	l.holding = hold
	pid := l.old.pid
	l.mu.Unlock()
	if began {
		l.log.Info("agent stopping: holding messages for the next one", "agent_pid", pid, "limit_bytes", l.limit)
	}
	return unanswered
}

// attach makes a ready agent the destination, after handing it what was
// held for it. It returns the calls a previous agent left unanswered, if
// that one's exit was never seen.
func (l *agentLink) attach(conn *wire.Conn, pid int) (unanswered []callKey) {
	l.mu.Lock()
	if l.cur.conn == conn {
		l.mu.Unlock()
		return nil
	}
	unanswered = append(l.settle(&l.cur), l.settle(l.old)...)
	held, refused := l.held, l.refused
	l.cur, l.holding = agentAccount{conn: conn, pid: pid}, false
	l.held, l.heldN, l.refused = nil, 0, 0
	lost := 0
	for i, raw := range held {
		if err := conn.Send(raw); err != nil {
			lost = len(held) - i
			break
		}
		l.cur.sent(raw)
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
	requeued := len(l.cur.unacked)
	unanswered = l.settle(&l.cur)
	if l.old != nil && !oldAlive {
		requeued += len(l.old.unacked)
		unanswered = append(unanswered, l.settle(l.old)...)
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

// settle closes the account of an agent that left (the current one, or the
// one that was being stopped): what it did not acknowledge goes to the front
// of the hold, since it may not have handled it and it was sent before
// anything held since, and the calls it did not answer are returned.
func (l *agentLink) settle(a *agentAccount) []callKey {
	if a == nil || a.conn == nil {
		return nil
	}
	held := append(a.unacked[:len(a.unacked):len(a.unacked)], a.handed...)
	l.held = append(held, l.held...)
	l.heldN += a.unackedN + a.handedN
	unanswered := make([]callKey, 0, len(a.calls))
	for k := range a.calls {
		unanswered = append(unanswered, k)
	}
	if a == l.old {
		l.old = nil
	} else {
		*a = agentAccount{}
	}
	return unanswered
}
