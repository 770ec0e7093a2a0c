package messenger

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/broodhq/brood/internal/losslog"
	"github.com/broodhq/brood/internal/msglink"
	"github.com/broodhq/brood/internal/wire"
)

// ackEvery is how many handled messages the agent acknowledges at once
// while busy; when its inbox runs empty it acknowledges at once. The master
// keeps every message the agent has not acknowledged, to hand it to the next
// agent if this one dies.
const ackEvery = 1024

// inbox carries messages and calls from the channel's reader to the
// dispatcher: the reader must never wait for a handler, because replies to
// the calls those handlers make arrive through it.
type inbox struct {
	mu     sync.Mutex
	q      []inFrame
	bytes  int
	limit  int  // bytes queued at most; past it, messages are dropped
	idle   bool // the dispatcher waits for wake
	closed bool
	lost   losslog.Log // what was dropped: first at once, the rest a second later
	wake   chan struct{}
	done   chan struct{} // the dispatcher has returned

	// waiting is the calls in q or in the dispatcher's batch that it has
	// not started, in order: what handOver answers when the agent is hung.
	waiting []queuedCall
	// handedOver: the master found this agent hung (handOver); calls are
	// no longer started, but answered with msglink.CodeHandOver.
	handedOver bool
}

// queuedCall is who waits for a call in the inbox.
type queuedCall struct {
	from int
	id   uint64
}

// inFrame is a frame in the inbox, with the direct channel it came by (nil:
// the master's).
type inFrame struct {
	f wire.Frame
	p *peer
}

func (b *inbox) init() {
	b.wake = make(chan struct{}, 1)
	b.lost.Msg, b.lost.Level = "messages dropped", slog.LevelError
	b.done = make(chan struct{})
}

func (b *inbox) push(f wire.Frame, p *peer, m *Messenger) {
	n := len(f.Data) + len(f.Action)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		// Stopping. A message stays with the master when this is the agent
		// (it was not acknowledged) and goes to the next one; a call is
		// answered now rather than when this process is gone.
		if f.Kind == wire.KindCall {
			m.replyError(f.FromPID, f.CallID, msglink.CodeGone, fmt.Sprintf("pid %d is stopping", m.pid))
		}
		return
	}
	if b.bytes+n > b.limit {
		// Handlers are not keeping up and the queue is at its bound. For
		// the agent this cannot happen: the master stops sending it more
		// than it has acknowledged long before.
		limit := b.limit
		b.mu.Unlock()
		b.lost.Add(m.log, fmt.Sprintf("handlers are not keeping up and the inbox is full (%d bytes)", limit), f.Action)
		return
	}
	if f.Kind == wire.KindCall {
		if b.handedOver {
			b.mu.Unlock()
			m.replyHandOver(f.FromPID, f.CallID)
			return
		}
		b.waiting = append(b.waiting, queuedCall{f.FromPID, f.CallID})
	}
	b.q = append(b.q, inFrame{f, p})
	b.bytes += n
	m.queued.Add(1)
	wake := b.idle
	b.idle = false
	b.mu.Unlock()
	if wake {
		b.wake <- struct{}{}
	}
}

// reserveCall reports whether everything pushed so far has been handled,
// so that a call may start at once from the reader (through the dispatcher
// its handler would start no sooner, only later), and if so counts the
// handler in handlers while the inbox is surely open: Close waits for
// handlers only after closing the inbox.
func (b *inbox) reserveCall(handlers *sync.WaitGroup) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.idle || len(b.q) > 0 || b.closed || b.handedOver {
		return false
	}
	handlers.Add(1)
	return true
}

// startQueued reports whether the dispatcher may start the call it has
// reached, the first of waiting: not when handOver answered it.
func (b *inbox) startQueued() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.handedOver {
		return false
	}
	b.waiting[0] = queuedCall{}
	b.waiting = b.waiting[1:]
	return true
}

// handOver is the master's word that this agent is hung
// (msglink.CtlHung): its dispatcher is stuck in an On function, and the
// calls queued behind it would wait for it until the agent is killed, then
// fail although they never ran. Each is answered with CodeHandOver, on
// which its caller holds it for the next agent; so is every call delivered
// from now on, since the agent is about to be killed. Calls already
// started are left alone: they may have run, and end with ErrTargetGone
// when the agent dies. The master is told once that is done. The reader
// of the master's channel calls it: only the dispatcher is stuck.
func (m *Messenger) handOver() {
	if m.role != wire.RoleAgent {
		return
	}
	b := &m.in
	b.mu.Lock()
	calls := b.waiting
	b.waiting = nil
	b.handedOver = true
	b.mu.Unlock()
	for _, c := range calls {
		m.replyHandOver(c.from, c.id)
	}
	// Each worker holds what it sends from now on for the next agent
	// (agentPath.hung): what it sent before gets CodeHandOver.
	for _, p := range m.peers.all() {
		_ = p.conn.SendNow(hungFrame)
	}
	m.log.Error("hung, the master says: calls that did not start are handed to the next agent", "calls", len(calls))
	f := wire.Frame{Kind: wire.KindControl, Route: wire.ToMaster, Action: msglink.CtlHung}
	f.Data, _ = json.Marshal(msglink.Hung{Calls: len(calls)})
	_ = m.conn.SendFrame(&f)
}

var hungFrame = (&wire.Frame{Kind: wire.KindControl, Route: wire.ToPID, From: wire.RoleAgent, Action: msglink.CtlHung}).Encode()

// replyHandOver hands call id back to its caller, to, for the next agent;
// in relay mode to the master, which holds the calls for the agent (a
// reply-error routed to the master, whose target pid is the caller).
func (m *Messenger) replyHandOver(to int, id uint64) {
	if !m.relay.Load() {
		m.replyError(to, id, msglink.CodeHandOver, fmt.Sprintf("agent %d is hung and did not start the call", m.pid))
		return
	}
	b, _ := json.Marshal(msglink.ReplyError{Code: msglink.CodeHandOver, Error: fmt.Sprintf("agent %d is hung and did not start the call", m.pid)})
	f := wire.Frame{Kind: wire.KindReplyError, Route: wire.ToMaster, From: m.role, ToPID: to, FromPID: m.pid, CallID: id, Data: b}
	if err := m.conn.SendNow(f.Encode()); err != nil {
		m.log.Warn("call not handed back", "caller_pid", to, "err", err)
	}
}

func (b *inbox) close() {
	b.mu.Lock()
	b.closed = true
	wake := b.idle
	b.idle = false
	b.mu.Unlock()
	if wake {
		b.wake <- struct{}{}
	}
}

// dispatch is the Messenger's one dispatching goroutine: it runs On
// functions in arrival order and starts Handle functions. It returns once
// the inbox is closed and empty.
func (m *Messenger) dispatch() {
	defer close(m.in.done)
	defer m.in.lost.Flush()
	b := &m.in
	var batch []inFrame
	for {
		b.mu.Lock()
		batch, b.q = b.q, batch[:0]
		b.bytes = 0
		if len(batch) == 0 {
			closed := b.closed
			b.idle = !closed
			b.mu.Unlock()
			m.ack(0)
			if closed {
				return
			}
			<-b.wake
			continue
		}
		b.mu.Unlock()
		for i := range batch {
			m.dispatchOne(&batch[i].f, batch[i].p)
			batch[i] = inFrame{} // let the data go
			m.queued.Add(-1)
			m.progress.Add(1)
		}
		m.ack(ackEvery)
	}
}

// ack tells the master how many messages the agent has handled, when at
// least min are unacknowledged. Only the agent acknowledges: its messages
// are the ones the master keeps across a restart.
func (m *Messenger) ack(min uint64) {
	if m.role != wire.RoleAgent {
		return
	}
	// Messages that came over a direct channel are acknowledged to their
	// sender, over it.
	keep := m.ackDirty[:0]
	for _, p := range m.ackDirty {
		if p.handled-p.acked < min {
			keep = append(keep, p)
			continue
		}
		p.acked, p.dirty = p.handled, false
		f := wire.Frame{Kind: wire.KindAck, Route: wire.ToPID, From: m.role, ToPID: p.pid, FromPID: m.pid, CallID: p.handled}
		if err := p.conn.Send(f.Encode()); err != nil {
			m.log.Debug("acknowledgement not sent", "worker_pid", p.pid, "err", err)
		}
	}
	clear(m.ackDirty[len(keep):])
	m.ackDirty = keep
	if m.handled == m.acked || m.handled-m.acked < min {
		return
	}
	m.acked = m.handled
	f := wire.Frame{Kind: wire.KindAck, Route: wire.ToMaster, From: m.role, FromPID: m.pid, CallID: m.handled}
	if err := m.conn.Send(f.Encode()); err != nil {
		m.log.Debug("acknowledgement not sent", "err", err)
	}
}

func messageOf(f *wire.Frame) Message {
	return Message{Action: f.Action, Data: f.Data, From: f.From.String(), PID: f.FromPID}
}

func (m *Messenger) dispatchOne(f *wire.Frame, p *peer) {
	if f.Kind == wire.KindCall {
		if !m.in.startQueued() {
			return // answered by handOver
		}
		m.handlers.Add(1) // before the dispatcher ends, so before Close waits
		m.serve(f)
		return
	}
	msg := messageOf(f)
	t := m.subs.Load()
	if p != nil {
		p.handled++
		if !p.dirty {
			p.dirty = true
			m.ackDirty = append(m.ackDirty, p)
		}
	} else if m.relay.Load() {
		m.handled++ // acknowledged to the master, which keeps them (relay mode)
	}
	heard := false
	for _, s := range t.on[f.Action] {
		if s.once {
			if !s.fired.CompareAndSwap(false, true) {
				continue
			}
			m.unsubscribe(f.Action, s)
		}
		heard = true
		m.safely(msg, s.fn)
	}
	if !heard {
		n := m.unheard.Add(1)
		m.log.Debug("message not handled: nothing listens for its action",
			"action", f.Action, "from", msg.From, "from_pid", msg.PID, "unheard_total", n)
	}
}

// safely runs an On function; a panic is logged, and the messages behind it
// are still delivered.
func (m *Messenger) safely(msg Message, fn func(Message)) {
	defer func() {
		if p := recover(); p != nil {
			m.log.Error("message handler panicked", "action", msg.Action, "from", msg.From,
				"from_pid", msg.PID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	fn(msg)
}

// serve answers a call in its own goroutine, so that a slow handler delays
// neither the messages behind it nor other calls. The caller has counted
// it in handlers.
func (m *Messenger) serve(f *wire.Frame) {
	msg, id := messageOf(f), f.CallID
	h := m.subs.Load().handle[f.Action]
	if h == nil {
		m.noHandler(msg, id)
		return
	}
	m.running.Add(1)
	ctx, done := m.handlerContext(f)
	go m.answer(ctx, done, h.fn, msg, id)
}

// inlineHandoff is how long a call handler run by a direct channel's
// reader (serveInline) keeps that channel unread before another goroutine
// takes over reading it. Go's timers fire late when every P is idle (the
// netpoller sleeps in whole milliseconds), so in practice a handler that
// blocks holds the frames behind it for up to about a millisecond.
const inlineHandoff = 200 * time.Microsecond

// A handler whose run on a reader took longer than inlineSlow runs in
// goroutines of its own for inlineSlowFor: one that waits on something (a
// store's group commit, say) would otherwise hold the channel, and the
// calls behind it, at every call. Past inlineSlow, a goroutine's wake-up
// costs less than the wait it spares the calls behind.
const (
	inlineSlow    = 20 * time.Microsecond
	inlineSlowFor = time.Second
)

// serveInline answers a call that came over a direct channel on the
// goroutine that read it, which then goes back to reading. Starting a
// goroutine for each call costs a wake-up of another thread in the Go
// scheduler (and on a shared machine, of another CPU), which on a round
// trip of a few tens of microseconds is a good part of the time; most
// handlers return sooner than that wake-up takes. A handler that does not
// return within inlineHandoff loses the channel: resume, on a goroutine of
// its own, reads on, so a slow or blocked handler (one that calls the
// worker it serves, say, whose reply comes over this channel) delays what
// follows it by about that long and no more. serveInline reports whether
// the caller is still the channel's reader. The caller has counted the
// call in handlers.
func (m *Messenger) serveInline(f *wire.Frame, resume func()) (reader bool) {
	h := m.subs.Load().handle[f.Action]
	start := time.Now()
	if h == nil || start.UnixNano() < h.goUntil.Load() {
		// No handler: serve answers at once. Lately slow: it would hold
		// the channel; serve gives it a goroutine of its own.
		m.serve(f)
		return true
	}
	msg, id := messageOf(f), f.CallID
	m.running.Add(1)
	ctx, done := m.handlerContext(f)
	const (
		running = iota
		returned
		handedOff
	)
	var state atomic.Int32
	t := time.AfterFunc(inlineHandoff, func() {
		if state.CompareAndSwap(running, handedOff) {
			resume()
		}
	})
	m.answer(ctx, done, h.fn, msg, id)
	if end := time.Now(); end.Sub(start) > inlineSlow {
		h.goUntil.Store(end.Add(inlineSlowFor).UnixNano())
	}
	if state.CompareAndSwap(running, returned) {
		t.Stop()
		return true
	}
	return false
}

func (m *Messenger) noHandler(msg Message, id uint64) {
	defer m.handlers.Done()
	m.log.Debug("call not handled: no Handle for its action", "action", msg.Action, "from", msg.From, "from_pid", msg.PID)
	m.replyError(msg.PID, id, msglink.CodeNoHandler, fmt.Sprintf("no Handle for %q in pid %d", msg.Action, m.pid))
}

// answer runs a call's handler and replies to its caller.
func (m *Messenger) answer(ctx context.Context, done func(), h HandlerFunc, msg Message, id uint64) {
	defer m.handlers.Done()
	defer m.running.Add(-1)
	defer m.progress.Add(1)
	defer done()
	res, err := m.runHandler(ctx, h, msg)
	if err != nil {
		code := msglink.CodeError
		if _, ok := err.(panicError); ok {
			code = msglink.CodePanic
		}
		m.replyError(msg.PID, id, code, err.Error())
		return
	}
	f := wire.Frame{Kind: wire.KindReply, Route: wire.ToPID, From: m.role, ToPID: msg.PID, FromPID: m.pid, CallID: id}
	raw, n, err := m.frameOf(f, res)
	switch {
	case err != nil:
		m.replyError(msg.PID, id, msglink.CodeError, fmt.Sprintf("encode reply: %v", err))
	case raw == nil:
		m.log.Error("reply over the size limit", "action", msg.Action, "bytes", n, "limit", m.maxData)
		m.replyError(msg.PID, id, msglink.CodeTooLarge, fmt.Sprintf("%d bytes, limit %d", n, m.maxData))
	default:
		m.sendFrame(msg.PID, raw)
	}
}

type panicError string

func (p panicError) Error() string { return string(p) }

func (m *Messenger) runHandler(ctx context.Context, h HandlerFunc, msg Message) (res any, err error) {
	defer func() {
		if p := recover(); p != nil {
			m.log.Error("call handler panicked", "action", msg.Action, "from", msg.From,
				"from_pid", msg.PID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			res, err = nil, panicError(fmt.Sprint(p))
		}
	}()
	return h(ctx, msg)
}

func (m *Messenger) replyError(to int, id uint64, code, text string) {
	b, _ := json.Marshal(msglink.ReplyError{Code: code, Error: text})
	m.reply(to, id, wire.KindReplyError, b)
}

// reply goes out at once, never through the queue of sends waiting for the
// cluster to be ready: the caller is waiting.
func (m *Messenger) reply(to int, id uint64, kind wire.Kind, data []byte) {
	f := wire.Frame{Kind: kind, Route: wire.ToPID, From: m.role, ToPID: to, FromPID: m.pid, CallID: id, Data: data}
	m.sendFrame(to, f.Encode())
}

// sendFrame sends an encoded reply to pid to.
func (m *Messenger) sendFrame(to int, raw []byte) {
	if err := m.sendReply(to, raw); err != nil {
		m.log.Warn("reply not sent", "to_pid", to, "err", err)
	}
}
