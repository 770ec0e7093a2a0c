package messenger

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/broodhq/brood/internal/msglink"
	"github.com/broodhq/brood/internal/wire"
)

// DefaultCallTimeout bounds a Call whose context has no deadline: a call
// must end, whatever happens to the target.
const DefaultCallTimeout = 30 * time.Second

// errDefaultTimeout is the cause of a call's end at DefaultCallTimeout;
// made once, not at every call (an HTTP request's context has no deadline,
// so most calls need it).
var errDefaultTimeout = fmt.Errorf("no reply within %s (messenger.DefaultCallTimeout; give the context a deadline)", DefaultCallTimeout)

// Call sends data to the process with that pid, which answers with its
// Handle function for action, and decodes the answer into reply (which may
// be nil). Call returns:
//   - the error the handler returned, or its panic, as a *RemoteError;
//   - ErrNoHandler if the target has no Handle for action;
//   - ErrTargetGone if there is no such process in the cluster, or it
//     exited or restarted before it replied (the call may or may not have
//     run);
//   - ctx's error when it ends first (DefaultCallTimeout if it has no
//     deadline);
//   - ErrTooLarge, ErrClosed or ErrNoCluster before anything was sent.
//
// Unlike messages, a Call made before the cluster is ready is sent at once,
// so that a WithApp hook can ask the agent (ready before any worker starts)
// for what it needs; it may therefore overtake messages queued before it.
func (m *Messenger) Call(ctx context.Context, pid int, action string, data, reply any) error {
	return m.call(ctx, wire.ToPID, pid, action, data, reply)
}

// CallAgent is Call to the agent. While the agent restarts, the call is
// held for the new agent, and so is a call that a hung agent never started
// (see the package documentation); the ctx deadline still applies.
func (m *Messenger) CallAgent(ctx context.Context, action string, data, reply any) error {
	return m.call(ctx, wire.ToAgent, 0, action, data, reply)
}

// callTable is the calls waiting for a reply. The reader resolves them, and
// each membership change fails the calls to a worker that left. Calls to the
// agent are failed by whoever knows whether one reached an agent that died
// or is held for the next: the worker's agentPath on the direct channels,
// the master on the route through it.
type callTable struct {
	mu      sync.Mutex
	next    uint64
	pending map[uint64]*pendingCall
	members msglink.Members // as last announced
}

type pendingCall struct {
	target int // the pid the call waits on; 0: the agent, whichever it is
	done   chan callResult
}

type callResult struct {
	kind wire.Kind // reply or reply-error
	from int
	data []byte
	err  error // failed here, without a reply
}

func (m *Messenger) call(ctx context.Context, route wire.Route, pid int, action string, data, reply any) error {
	target := "the agent"
	if route == wire.ToPID {
		target = "pid " + strconv.Itoa(pid)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, DefaultCallTimeout, errDefaultTimeout)
		defer cancel()
	}
	id, p := m.calls.add(pid)
	dl, _ := ctx.Deadline()
	raw, err := m.encodeBy(wire.KindCall, route, pid, id, dl.UnixNano(), action, data)
	if err == nil {
		err = m.out.direct(m.route, raw)
	}
	if err != nil {
		m.calls.remove(id)
		return fmt.Errorf("call %q to %s: %w", action, target, err)
	}
	select {
	case r := <-p.done:
		if r.kind == wire.KindReplyError && !dl.IsZero() && !time.Now().Before(dl) {
			// The handler's context carries this deadline too and may end
			// a moment before ours is noticed: the caller's deadline is
			// what it reports.
			<-ctx.Done()
			return callCtxError(ctx, action, target)
		}
		switch {
		case r.err != nil:
			return fmt.Errorf("call %q to %s: %w", action, target, r.err)
		case r.kind == wire.KindReplyError:
			return callError(action, target, r.from, r.data)
		case reply != nil:
			if err := decodeData(r.data, reply); err != nil {
				return fmt.Errorf("call %q to %s: decode reply: %w", action, target, err)
			}
		}
		return nil
	case <-ctx.Done():
		m.calls.remove(id)
		m.gaveUp(route, pid, id)
		return callCtxError(ctx, action, target)
	}
}

func callCtxError(ctx context.Context, action, target string) error {
	err, cause := ctx.Err(), context.Cause(ctx)
	if cause != nil && cause != err {
		return fmt.Errorf("call %q to %s: %w: %w", action, target, err, cause)
	}
	return fmt.Errorf("call %q to %s: %w", action, target, err)
}

// direct sends a call at once, unless the Messenger is closed.
func (o *outbox) direct(route func([]byte) error, raw []byte) error {
	o.mu.Lock()
	closed := o.closed
	o.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return route(raw)
}

// gaveUp tells the handler of call id that its caller gave up, so that its
// context ends.
func (m *Messenger) gaveUp(route wire.Route, pid int, id uint64) {
	if m.conn == nil {
		return
	}
	if m.role == wire.RoleApp && !m.relay.Load() && (route == wire.ToAgent || m.path.reaches(pid)) {
		m.path.cancel(id)
		return
	}
	f := wire.Frame{Kind: wire.KindCancel, Route: wire.ToPID, From: m.role, ToPID: pid, FromPID: m.pid, CallID: id}
	if route == wire.ToAgent {
		f.Route = wire.ToAgent
	}
	raw := f.Encode()
	if m.role == wire.RoleAgent && !m.relay.Load() {
		if pid == m.pid {
			m.cancelHandler(m.pid, id, "the caller gave up")
		} else if p := m.peers.get(pid); p != nil {
			_ = p.conn.SendNow(raw)
		}
		return
	}
	_ = m.conn.SendNow(raw)
}

func (c *callTable) has(id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending[id] != nil
}

// failTarget fails every call waiting on pid.
func (c *callTable) failTarget(pid int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, p := range c.pending {
		if p.target == pid {
			delete(c.pending, id)
			p.done <- callResult{err: err}
		}
	}
}

// failAgentCalls fails the calls with these ids: calls to the agent that
// it will not answer.
func (m *Messenger) failAgentCalls(ids []uint64, why string) {
	for _, id := range ids {
		if p := m.calls.take(id); p != nil {
			p.done <- callResult{err: fmt.Errorf("%w: %s", ErrTargetGone, why)}
		}
	}
}

func (c *callTable) add(pid int) (uint64, *pendingCall) {
	p := &pendingCall{target: pid, done: make(chan callResult, 1)}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next++
	c.pending[c.next] = p
	return c.next, p
}

func (c *callTable) remove(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

func (c *callTable) take(id uint64) *pendingCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pending[id]
	delete(c.pending, id)
	return p
}

func (c *callTable) failAll(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, p := range c.pending {
		delete(c.pending, id)
		p.done <- callResult{err: err}
	}
}

// resolve hands a reply to its call; the reader calls it.
func (m *Messenger) resolve(f wire.Frame) {
	p := m.calls.take(f.CallID)
	if p == nil {
		m.log.Debug("reply to a call nobody waits for any more", "call_id", f.CallID, "from_pid", f.FromPID)
		return
	}
	p.done <- callResult{kind: f.Kind, from: f.FromPID, data: f.Data}
}

// setMembers records a new membership and fails the calls to a process
// that has left it: a pid is never reused within a cluster's life here, so
// such a call cannot be answered, and the caller should not wait for its
// deadline to learn that.
func (m *Messenger) setMembers(mem msglink.Members) {
	m.relay.Store(mem.Relay)
	if m.role == wire.RoleApp {
		if mem.Relay {
			m.path.relayHeld(m)
		}
		m.path.setGone(m, mem.AgentGone)
	}
	defer m.watch.notify(false)
	c := &m.calls
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.members
	c.members = mem
	m.members.Store(&mem)
	gone := map[int]bool{}
	for _, pid := range append(old.Apps, old.Agent) {
		gone[pid] = pid != 0
	}
	for _, pid := range append(mem.Apps, mem.Agent) {
		delete(gone, pid)
	}
	for id, p := range c.pending {
		if gone[p.target] {
			delete(c.pending, id)
			p.done <- callResult{err: fmt.Errorf("%w: pid %d exited before it replied; the call may or may not have run", ErrTargetGone, p.target)}
		}
	}
	for pid, g := range gone {
		if g {
			go m.orphanHandlers(pid, "the caller exited")
		}
	}
}
