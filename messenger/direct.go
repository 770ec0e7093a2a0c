package messenger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/broodhq/brood/internal/msglink"
	"github.com/broodhq/brood/internal/wire"
)

// The direct channels: a socketpair between each worker and the agent,
// made by the master and handed to both (msglink.CtlDirect). Whatever a
// worker sends the agent, and whatever the agent sends a worker, goes over
// it; the master carries only what fans out between workers. The worker
// side is agentPath, the agent side peerTable.

// sendOn writes a call or reply at once if it can, because someone waits
// for it, and queues messages, which the writer batches.
func sendOn(c *wire.Conn, raw []byte) error {
	if wire.KindOf(raw) == wire.KindMessage {
		return c.Send(raw)
	}
	return c.SendNow(raw)
}

// route sends a raw message or call where it goes.
func (m *Messenger) route(raw []byte) error {
	if m.relay.Load() {
		return sendOn(m.conn, raw)
	}
	if m.role == wire.RoleAgent {
		return m.routeFromAgent(raw)
	}
	switch wire.RouteOf(raw) {
	case wire.ToAgent:
		return m.path.send(m, raw)
	case wire.ToAll:
		// The agent's copy goes direct, the workers' through the master:
		// each receiver still gets this sender's frames in order.
		apps := slices.Clone(raw)
		wire.SetRoute(apps, wire.ToApp)
		err := m.path.send(m, raw)
		if err2 := m.conn.Send(apps); err == nil {
			err = err2
		}
		return err
	case wire.ToPID:
		if pid := wire.ToPIDOf(raw); pid != 0 && (pid == m.AgentPID() || m.path.reaches(pid)) {
			return m.path.sendTo(pid, raw)
		}
	}
	return sendOn(m.conn, raw)
}

func (m *Messenger) routeFromAgent(raw []byte) error {
	switch wire.RouteOf(raw) {
	case wire.ToAgent:
		m.local(raw)
		return nil
	case wire.ToAll:
		m.local(raw)
		m.toApps(raw)
		return nil
	case wire.ToApp:
		m.toApps(raw)
		return nil
	case wire.ToRandom:
		var ps []*peer
		for _, pid := range m.members.Load().Apps {
			if p := m.peers.get(pid); p != nil {
				ps = append(ps, p)
			}
		}
		if len(ps) == 0 {
			return fmt.Errorf("%w: no worker is ready", ErrTargetGone)
		}
		return sendOn(ps[rand.IntN(len(ps))].conn, raw)
	case wire.ToPID:
		pid := wire.ToPIDOf(raw)
		if pid == m.pid {
			m.local(raw)
			return nil
		}
		if p := m.peers.get(pid); p != nil && slices.Contains(m.members.Load().Apps, pid) {
			return sendOn(p.conn, raw)
		}
		return fmt.Errorf("%w: no ready process %d in the cluster", ErrTargetGone, pid)
	}
	return sendOn(m.conn, raw)
}

// toApps sends the agent's copy of a message to every ready worker; a
// worker whose channel refuses it is logged, as the master logs its losses.
func (m *Messenger) toApps(raw []byte) {
	for _, pid := range m.members.Load().Apps {
		p := m.peers.get(pid)
		if p == nil {
			m.lostOut.Add(m.log, "no direct channel to the worker", actionOf(raw))
			continue
		}
		if err := sendOn(p.conn, raw); err != nil {
			m.lostOut.Add(m.log, err.Error(), actionOf(raw))
		}
	}
}

func actionOf(raw []byte) string {
	if f, err := wire.Parse(raw); err == nil {
		return f.Action
	}
	return ""
}

// local delivers what the agent sends itself.
func (m *Messenger) local(raw []byte) {
	f, err := wire.Parse(raw)
	if err != nil {
		return
	}
	m.deliver(f, nil)
}

// sendReply sends a reply or reply-error to its caller: over the direct
// channel when the caller is at its other end.
func (m *Messenger) sendReply(to int, raw []byte) error {
	if !m.relay.Load() {
		if m.role == wire.RoleAgent {
			if to == m.pid {
				f, _ := wire.Parse(raw)
				m.resolve(f)
				return nil
			}
			if p := m.peers.get(to); p != nil {
				return p.conn.SendNow(raw)
			}
		} else if c := m.path.connTo(to); c != nil {
			return c.SendNow(raw)
		}
	}
	return m.conn.SendNow(raw)
}

// agentPath is a worker's way to the agent. It keeps every message the
// agent has not acknowledged and every call it has not answered; while
// there is no agent channel (the agent restarts, or is being replaced) it
// holds what is sent to the agent, and hands it to the next agent first, in
// order, when the master passes the channel to it, which is once that
// agent is ready. The hold, the unacknowledged messages and the unanswered
// calls are each bounded by limit bytes.
type agentPath struct {
	mu       sync.Mutex
	limit    int
	conn     *wire.Conn // nil: holding
	pid      int        // the agent at conn's other end
	leaving  bool       // that agent is stopping: what is new is held
	gone     bool       // no agent is coming: sends are refused
	held     [][]byte
	heldN    int
	refused  int
	unacked  [][]byte
	unackedN int
	acked    uint64            // the agent's count of handled messages at unacked[0]
	calls    map[uint64][]byte // calls sent on conn, not yet answered, by id
	callsN   int
	handed   int // calls the agent at conn handed back (handOver)
}

// send passes a frame for the agent on, or holds it.
func (p *agentPath) send(m *Messenger, raw []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.conn != nil && !p.leaving:
		err := p.put(raw)
		if !errors.Is(err, errNotSent) {
			return err
		}
		// The agent has just gone and the reader has not noticed yet:
		// the call is held for the next, as if made a moment later.
	case p.gone:
		return fmt.Errorf("%w: there is no agent and none is coming", ErrTargetGone)
	}
	if p.heldN+len(raw) > p.limit {
		p.refused++
		if p.refused == 1 {
			m.log.Warn("hold for the restarting agent is full: what is sent to it is refused until it is back",
				"held", len(p.held), "limit_bytes", p.limit)
		}
		if wire.KindOf(raw) == wire.KindMessage {
			return fmt.Errorf("%w: the agent is restarting and the %d bytes held for it are at the bound", ErrBacklog, p.heldN)
		}
		return fmt.Errorf("%w: the agent is restarting and the hold for it is full", ErrTargetGone)
	}
	p.held = append(p.held, raw)
	p.heldN += len(raw)
	return nil
}

// sendTo is a frame for the agent with that pid only (Call(agentPID),
// SendTo(agentPID)): never held for another agent.
func (p *agentPath) sendTo(pid int, raw []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil || p.pid != pid || p.leaving {
		return fmt.Errorf("%w: the agent %d is stopping or gone", ErrTargetGone, pid)
	}
	err := p.put(raw)
	if errors.Is(err, errNotSent) {
		return fmt.Errorf("%w: the agent %d is gone", ErrTargetGone, pid)
	}
	return err
}

// errNotSent: put could not write a call because the channel is closed;
// none of it reached the agent, so it never ran.
var errNotSent = errors.New("call not sent: the channel to the agent is closed")

// put sends on the channel and records what was sent; p.mu is held. A
// closed channel means the agent has just gone and the reader has not
// noticed yet: a message is recorded like the others, and lost() requeues
// it; a call, which SendNow writes at once, is known not to have been
// written, and put returns errNotSent for the caller to hold it or fail it.
func (p *agentPath) put(raw []byte) error {
	switch wire.KindOf(raw) {
	case wire.KindMessage:
		if p.unackedN+len(raw) > p.limit {
			return fmt.Errorf("%w: the agent has not handled the %d bytes of messages this process sent it", ErrBacklog, p.unackedN)
		}
		if err := p.conn.Send(raw); err != nil && !errors.Is(err, wire.ErrClosed) {
			return err
		}
		p.unacked = append(p.unacked, raw)
		p.unackedN += len(raw)
	case wire.KindCall:
		// Each is kept until it is answered, for a hand-over: an agent
		// that answers none (hung, or slower than its callers) must not
		// make this process hold calls without end.
		if p.callsN+len(raw) > p.limit {
			return fmt.Errorf("%w: the agent has not answered the %d bytes of calls this process has on their way to it", ErrBacklog, p.callsN)
		}
		if err := p.conn.SendNow(raw); errors.Is(err, wire.ErrClosed) {
			return errNotSent
		} else if err != nil {
			return err
		}
		if p.calls == nil {
			p.calls = map[uint64][]byte{}
		}
		p.calls[wire.CallIDOf(raw)] = raw
		p.callsN += len(raw)
	default:
		return p.conn.SendNow(raw)
	}
	return nil
}

func (p *agentPath) reaches(pid int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conn != nil && p.pid == pid
}

func (p *agentPath) connTo(pid int) *wire.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil && p.pid == pid {
		return p.conn
	}
	return nil
}

// settle closes the account of the current channel: what the agent did not
// acknowledge goes to the front of the hold (it was sent before anything
// held since), and the unanswered calls are returned. p.mu is held.
func (p *agentPath) settle() (old *wire.Conn, unanswered []uint64) {
	if p.conn == nil {
		return nil, nil
	}
	p.held = append(p.unacked[:len(p.unacked):len(p.unacked)], p.held...)
	p.heldN += p.unackedN
	for id := range p.calls {
		unanswered = append(unanswered, id)
	}
	old = p.conn
	p.conn, p.pid, p.leaving, p.handed = nil, 0, false, 0
	p.unacked, p.unackedN, p.acked, p.calls, p.callsN = nil, 0, 0, nil, 0
	return old, unanswered
}

// attach makes a new channel to the agent pid the way to it, after sending
// it what was held.
func (p *agentPath) attach(m *Messenger, pid int, conn *wire.Conn) {
	p.mu.Lock()
	old, unanswered := p.settle()
	p.conn, p.pid, p.gone = conn, pid, false
	held, refused := p.held, p.refused
	p.held, p.heldN, p.refused = nil, 0, 0
	sent, skipped := 0, 0
	for i, raw := range held {
		if wire.KindOf(raw) == wire.KindCall && !m.calls.has(wire.CallIDOf(raw)) {
			skipped++ // its caller gave up
			continue
		}
		err := p.put(raw)
		if errors.Is(err, errNotSent) {
			// This agent is gone already: the rest waits for the next.
			for _, raw := range held[i:] {
				p.held = append(p.held, raw)
				p.heldN += len(raw)
			}
			break
		}
		if err != nil {
			m.log.Error("held messages not delivered to the new agent", "delivered", sent, "lost", len(held)-i, "agent_pid", pid, "err", err)
			break
		}
		sent++
	}
	p.mu.Unlock()
	if old != nil {
		old.Close(0)
	}
	m.failAgentCalls(unanswered, "the agent's channel was replaced before it replied; the call may or may not have run")
	if sent > 0 || refused > 0 {
		m.log.Info("delivered held messages to the new agent", "count", sent, "caller_gave_up", skipped, "refused_past_bound", refused, "agent_pid", pid)
	}
}

// lost is the reader's word that conn ended: the agent died, is gone after
// its drain, or the channel was reset.
func (p *agentPath) lost(m *Messenger, conn *wire.Conn) {
	p.mu.Lock()
	if p.conn != conn {
		p.mu.Unlock()
		conn.Close(0)
		return
	}
	requeued, handed := len(p.unacked), p.handed
	_, unanswered := p.settle()
	p.mu.Unlock()
	conn.Close(0)
	m.failAgentCalls(unanswered, "the agent exited, or its channel was reset, before it replied; the call may or may not have run")
	if requeued > 0 || len(unanswered) > 0 || handed > 0 {
		m.log.Info("channel to the agent closed: holding messages for the next one",
			"requeued_unacknowledged", requeued, "calls_failed", len(unanswered), "calls_handed_over", handed, "limit_bytes", p.limit)
	}
}

// draining: the agent at conn is stopping. Everything sent on conn before
// the "drained" answer is a closed set that it handles before it exits.
func (p *agentPath) draining(conn *wire.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != conn {
		return
	}
	p.leaving = true
	f := wire.Frame{Kind: wire.KindControl, Route: wire.ToAgent, Action: msglink.CtlDrained}
	_ = conn.SendNow(f.Encode())
}

// handOver takes back call id, which the hung agent at conn did not start
// (msglink.CodeHandOver), and holds it for the next agent as if it had been
// made while the agent restarts; from now on everything new for the agent is
// held too, since this one is about to be killed. It reports false when the
// call is not to be held: its caller gave up, it was made to this agent's
// pid (Call(agentPID), never held for another), or the hold is full or
// dropped; the reply-error then resolves it with ErrTargetGone.
func (p *agentPath) handOver(conn *wire.Conn, id uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != conn {
		return false
	}
	p.leaving = true
	raw, ok := p.forget(id)
	if !ok {
		return false
	}
	if p.gone || wire.RouteOf(raw) != wire.ToAgent || p.heldN+len(raw) > p.limit {
		return false
	}
	p.held = append(p.held, raw)
	p.heldN += len(raw)
	p.handed++
	return true
}

// hung: the agent at conn is hung and about to be killed (msglink.CtlHung):
// what is new is held for the next agent.
func (p *agentPath) hung(conn *wire.Conn) {
	p.mu.Lock()
	if p.conn == conn {
		p.leaving = true
	}
	p.mu.Unlock()
}

// isHandOver reports whether a reply-error's data is msglink.CodeHandOver.
func isHandOver(data []byte) bool {
	var re msglink.ReplyError
	return json.Unmarshal(data, &re) == nil && re.Code == msglink.CodeHandOver
}

func (p *agentPath) replied(conn *wire.Conn, id uint64) {
	p.mu.Lock()
	if p.conn == conn {
		p.forget(id)
	}
	p.mu.Unlock()
}

// forget takes call id out of the unanswered calls; p.mu is held.
func (p *agentPath) forget(id uint64) (raw []byte, ok bool) {
	raw, ok = p.calls[id]
	if ok {
		delete(p.calls, id)
		p.callsN -= len(raw)
	}
	return raw, ok
}

// ack forgets the messages the agent has handled: n counts every message
// from this process it handled on conn.
func (p *agentPath) ack(conn *wire.Conn, n uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != conn || n <= p.acked {
		return
	}
	k := int(min(n-p.acked, uint64(len(p.unacked))))
	for i := range k {
		p.unackedN -= len(p.unacked[i])
		p.unacked[i] = nil
	}
	p.unacked, p.acked = p.unacked[k:], n
}

// cancel tells the agent that the caller of call id gave up.
func (p *agentPath) cancel(id uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil {
		return
	}
	if _, ok := p.forget(id); !ok {
		return
	}
	f := wire.Frame{Kind: wire.KindCancel, Route: wire.ToAgent, CallID: id}
	_ = p.conn.SendNow(f.Encode())
}

// setGone records whether an agent is coming; when none is, what was held
// is dropped and its calls fail.
func (p *agentPath) setGone(m *Messenger, gone bool) {
	p.mu.Lock()
	was := p.gone
	p.gone = gone
	var dropped [][]byte
	if gone && !was {
		dropped = p.held
		p.held, p.heldN, p.refused = nil, 0, 0
	}
	p.mu.Unlock()
	if len(dropped) == 0 {
		return
	}
	var calls []uint64
	for _, raw := range dropped {
		if wire.KindOf(raw) == wire.KindCall {
			calls = append(calls, wire.CallIDOf(raw))
		}
	}
	m.failAgentCalls(calls, "no agent is coming back")
	m.log.Warn("dropped what was held for the agent: no agent is coming back", "messages", len(dropped)-len(calls), "calls_failed", len(calls))
}

// relayHeld sends what was held to the master, when it says the agent is
// reached through it.
func (p *agentPath) relayHeld(m *Messenger) {
	p.mu.Lock()
	held := p.held
	p.held, p.heldN = nil, 0
	for _, raw := range held {
		_ = sendOn(m.conn, raw)
	}
	p.mu.Unlock()
}

func (p *agentPath) close() {
	p.mu.Lock()
	c := p.conn
	p.mu.Unlock()
	if c != nil {
		c.Close(timeoutFlush)
	}
}

// readAgent reads a worker's channel to the agent pid until it ends.
func (m *Messenger) readAgent(pid int, conn *wire.Conn) {
	for {
		raw, err := conn.Read()
		if err != nil {
			if errors.Is(err, wire.ErrMalformed) {
				m.log.Error("malformed frame from the agent; resetting the direct channel", "agent_pid", pid, "err", err)
			}
			break
		}
		wire.SetSender(raw, wire.RoleAgent, pid)
		f, _ := wire.Parse(raw)
		switch f.Kind {
		case wire.KindReply, wire.KindReplyError:
			if f.Kind == wire.KindReplyError && isHandOver(f.Data) && m.path.handOver(conn, f.CallID) {
				continue // held for the next agent, whose answer resolves it
			}
			m.path.replied(conn, f.CallID)
			m.resolve(f)
		case wire.KindAck:
			m.path.ack(conn, f.CallID)
		case wire.KindControl:
			switch f.Action {
			case msglink.CtlDraining:
				m.path.draining(conn)
			case msglink.CtlHung:
				m.path.hung(conn)
			}
		case wire.KindCancel:
			m.cancelHandler(pid, f.CallID, "the caller gave up")
		default:
			m.deliver(f, nil)
		}
	}
	m.path.lost(m, conn)
	m.orphanHandlers(pid, "the caller is gone")
}

// peerTable is the agent's direct channels, one per worker, by pid.
type peerTable struct {
	mu      sync.Mutex
	byPID   map[int]*peer
	leaving bool // the agent is stopping
}

type peer struct {
	pid       int
	conn      *wire.Conn
	drained   chan struct{} // closed at the worker's CtlDrained, or when the channel ends
	drainOnce sync.Once

	handled, acked uint64 // messages from it the dispatcher handled, acknowledged; the dispatcher's
	dirty          bool   // in the dispatcher's list of peers to acknowledge
}

func (p *peer) markDrained() { p.drainOnce.Do(func() { close(p.drained) }) }

func (t *peerTable) get(pid int) *peer {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byPID[pid]
}

func (t *peerTable) all() []*peer {
	t.mu.Lock()
	defer t.mu.Unlock()
	ps := make([]*peer, 0, len(t.byPID))
	for _, p := range t.byPID {
		ps = append(ps, p)
	}
	return ps
}

var drainingFrame = (&wire.Frame{Kind: wire.KindControl, Route: wire.ToPID, From: wire.RoleAgent, Action: msglink.CtlDraining}).Encode()

// addPeer takes over the agent's end of a direct channel to worker pid.
func (m *Messenger) addPeer(pid int, conn *wire.Conn) {
	p := &peer{pid: pid, conn: conn, drained: make(chan struct{})}
	t := &m.peers
	t.mu.Lock()
	if t.byPID == nil {
		t.byPID = map[int]*peer{}
	}
	old := t.byPID[pid]
	t.byPID[pid] = p
	leaving := t.leaving
	t.mu.Unlock()
	if old != nil {
		old.conn.Close(0)
	}
	if leaving {
		_ = conn.SendNow(drainingFrame)
	}
	go m.readPeer(p)
}

// readPeer reads the agent's channel to one worker until it ends. A call
// whose handler can start at once runs on this goroutine (serveInline);
// if it outlasts inlineHandoff, a new readPeer reads on and this one
// returns when the handler does, leaving the channel to it.
//
// While more frames are buffered, the replies to them are corked, so that
// a burst of calls read in one system call is answered in one too.
func (m *Messenger) readPeer(p *peer) {
	for {
		if p.conn.Buffered() == 0 {
			p.conn.Uncork() // before waiting for more
		}
		raw, err := p.conn.Read()
		if err != nil {
			p.conn.Uncork()
			if errors.Is(err, wire.ErrMalformed) {
				m.log.Error("malformed frame from a worker; resetting its direct channel", "worker_pid", p.pid, "err", err)
			}
			break
		}
		wire.SetSender(raw, wire.RoleApp, p.pid)
		f, _ := wire.Parse(raw)
		switch f.Kind {
		case wire.KindReply, wire.KindReplyError:
			m.resolve(f)
		case wire.KindControl:
			if f.Action == msglink.CtlDrained {
				p.markDrained()
			}
		case wire.KindCancel:
			m.cancelHandler(p.pid, f.CallID, "the caller gave up")
		case wire.KindCall:
			if m.in.reserveCall(&m.handlers) {
				if p.conn.Buffered() > 0 {
					p.conn.Cork()
				}
				if !m.serveInline(&f, func() { m.readPeer(p) }) {
					return // another readPeer has the channel
				}
				continue
			}
			m.in.push(f, p, m)
		case wire.KindMessage:
			m.deliver(f, p)
		}
	}
	p.markDrained()
	t := &m.peers
	t.mu.Lock()
	mine := t.byPID[p.pid] == p
	if mine {
		delete(t.byPID, p.pid)
	}
	leaving := t.leaving
	t.mu.Unlock()
	p.conn.Close(0)
	m.calls.failTarget(p.pid, fmt.Errorf("%w: the channel to pid %d closed before it replied; the call may or may not have run", ErrTargetGone, p.pid))
	m.orphanHandlers(p.pid, "the caller is gone")
	if mine && !leaving && !m.closing.Load() {
		// The worker may be alive (its channel was reset): the master makes
		// a new pair if it is.
		f := wire.Frame{Kind: wire.KindControl, Route: wire.ToMaster, Action: msglink.CtlDirectReset}
		f.Data, _ = json.Marshal(msglink.Direct{Peer: p.pid})
		_ = m.conn.SendFrame(&f)
	}
}

// timeoutFlush bounds how long closing a direct channel waits for what is
// queued on it.
const timeoutFlush = time.Second

// leavePeers, at the agent's stop, tells every worker to send nothing more
// but replies, and waits, until ctx ends, for each to confirm: what the
// workers sent before is then a closed set that the drain handles.
func (m *Messenger) leavePeers(ctx context.Context) {
	t := &m.peers
	t.mu.Lock()
	t.leaving = true
	t.mu.Unlock()
	ps := t.all()
	for _, p := range ps {
		_ = p.conn.SendNow(drainingFrame)
	}
	for _, p := range ps {
		select {
		case <-p.drained:
		case <-ctx.Done():
			m.log.Warn("workers did not confirm the agent's drain before the stop timeout", "err", context.Cause(ctx))
			return
		}
	}
}

func (m *Messenger) closePeers() {
	m.peers.mu.Lock()
	m.peers.leaving = true
	m.peers.mu.Unlock()
	for _, p := range m.peers.all() {
		p.conn.Close(timeoutFlush)
	}
}
