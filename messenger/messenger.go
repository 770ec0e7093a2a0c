package messenger

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/broodhq/brood/internal/losslog"
	"github.com/broodhq/brood/internal/msglink"
	"github.com/broodhq/brood/internal/wire"
)

// Messenger sends and receives the messages of one process of a cluster.
// Its methods are safe for concurrent use.
type Messenger struct {
	log     *slog.Logger
	conn    *wire.Conn // nil: not part of a cluster
	role    wire.Role
	pid     int
	maxData int

	subMu sync.Mutex // serialises changes to subs
	subs  atomic.Pointer[subTable]

	out outbox
	in  inbox

	calls   callTable
	members atomic.Pointer[msglink.Members]
	unheard atomic.Uint64
	watch   watchers // OnMembers

	relay   atomic.Bool // the master relays agent traffic (msglink.Members.Relay)
	closing atomic.Bool
	path    agentPath // a worker's way to the agent: direct.go
	peers   peerTable // the agent's ways to the workers: direct.go
	lostOut losslog.Log

	handled, acked uint64  // messages the dispatcher has handled, and acknowledged; its own
	ackDirty       []*peer // peers with messages handled and not acknowledged; the dispatcher's
	inflight       inflight

	ctx      context.Context // handlers' context; ends when the Messenger closes
	cancel   context.CancelFunc
	handlers sync.WaitGroup // running Handle functions
	running  atomic.Int64   // how many
	progress atomic.Uint64  // messages handled, handlers returned, Progress calls: for hang detection
	queued   atomic.Int64   // frames in the inbox
}

// Config describes a Messenger to New.
type Config struct {
	Logger *slog.Logger // nil: slog.Default()
	// Link joins the Messenger to its master; framework.Run makes it. Nil
	// makes a Messenger outside any cluster: On and Handle register, and
	// every send and call fails with ErrNoCluster.
	Link *msglink.Link
}

// New returns a Messenger. framework.Run creates the real ones and hands
// them out through agent.Agent and app.App.
func New(c Config) *Messenger {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	m := &Messenger{log: c.Logger, pid: os.Getpid(), role: wire.RoleApp}
	m.subs.Store(&subTable{})
	m.members.Store(&msglink.Members{})
	m.calls.pending = map[uint64]*pendingCall{}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.inflight.m = map[callKey]*running{}
	m.in.init()
	if c.Link != nil {
		m.conn = c.Link.Conn
		m.role = c.Link.Role
		m.maxData = m.conn.MaxFrame()
		m.out.limit = wire.QueueLimit(m.maxData)
		m.in.limit = wire.QueueLimit(m.maxData)
		m.path.limit = wire.QueueLimit(m.maxData) / 2
		c.Link.Endpoint = endpoint{m}
		go m.dispatch()
	} else {
		close(m.in.done)
	}
	return m
}

// Broadcast sends to the agent and every worker, the sender included.
func (m *Messenger) Broadcast(action string, data any) error {
	return m.send(wire.ToAll, 0, action, data)
}

// SendToApp sends to every worker; from a worker, itself included.
func (m *Messenger) SendToApp(action string, data any) error {
	return m.send(wire.ToApp, 0, action, data)
}

// SendToAgent sends to the agent; from the agent, to itself.
func (m *Messenger) SendToAgent(action string, data any) error {
	return m.send(wire.ToAgent, 0, action, data)
}

// SendRandom sends to one worker chosen at random.
func (m *Messenger) SendRandom(action string, data any) error {
	return m.send(wire.ToRandom, 0, action, data)
}

// SendTo sends to the process with that pid (see AgentPID and AppPIDs).
func (m *Messenger) SendTo(pid int, action string, data any) error {
	return m.send(wire.ToPID, pid, action, data)
}

// AgentPID is the pid of the ready agent, or 0 while there is none (before
// it is ready, and while it restarts).
func (m *Messenger) AgentPID() int { return m.members.Load().Agent }

// AppPIDs returns the pids of the ready workers, ordered by slot.
func (m *Messenger) AppPIDs() []int {
	return append([]int(nil), m.members.Load().Apps...)
}

// send encodes and sends a message; before the cluster is ready it is queued.
func (m *Messenger) send(route wire.Route, pid int, action string, data any) error {
	raw, err := m.encode(wire.KindMessage, route, pid, 0, action, data)
	if err != nil {
		return fmt.Errorf("send %q: %w", action, err)
	}
	if err := m.out.send(m.route, raw); err != nil {
		return fmt.Errorf("send %q: %w", action, err)
	}
	return nil
}

// encode makes a frame, refusing what the receiving end would refuse.
func (m *Messenger) encode(kind wire.Kind, route wire.Route, pid int, id uint64, action string, data any) ([]byte, error) {
	return m.encodeBy(kind, route, pid, id, 0, action, data)
}

func (m *Messenger) encodeBy(kind wire.Kind, route wire.Route, pid int, id uint64, deadline int64, action string, data any) ([]byte, error) {
	if m.conn == nil {
		return nil, ErrNoCluster
	}
	if len(action) > wire.MaxAction {
		return nil, fmt.Errorf("%w: action names are limited to %d bytes", ErrTooLarge, wire.MaxAction)
	}
	f := wire.Frame{Kind: kind, Route: route, From: m.role, ToPID: pid, FromPID: m.pid, CallID: id, Deadline: deadline, Action: action}
	raw, n, err := m.frameOf(f, data)
	switch {
	case err != nil:
		return nil, fmt.Errorf("encode data: %w", err)
	case raw == nil:
		return nil, fmt.Errorf("%w: %d bytes encoded, limit %d (framework.WithMaxMessageSize)", ErrTooLarge, n, m.maxData)
	}
	return raw, nil
}

// frameOf encodes f with data, as JSON, for its data. Data whose size is
// known beforehand (Bytes) is encoded straight into the frame. Data over
// the size limit gives no frame: raw is nil, and n is its size.
func (m *Messenger) frameOf(f wire.Frame, data any) (raw []byte, n int, err error) {
	if n, ok := dataLen(data); ok {
		if n > m.maxData {
			return nil, n, nil
		}
		raw, err = appendData(f.AppendHead(make([]byte, 0, f.HeadSize()+n), n), data)
		return raw, n, err
	}
	b, err := json.Marshal(data)
	if err != nil || len(b) > m.maxData {
		return nil, len(b), err
	}
	f.Data = b
	return f.Encode(), len(b), nil
}

// outbox holds messages sent before the cluster is ready. egg drops them;
// here they wait, in order, because a WithApp hook is where applications
// naturally announce themselves.
type outbox struct {
	mu     sync.Mutex
	ready  bool
	closed bool
	queue  [][]byte
	queued int
	limit  int // bytes queued at most
}

func (o *outbox) send(route func([]byte) error, raw []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case o.closed:
		return ErrClosed
	case !o.ready:
		if o.queued+len(raw) > o.limit {
			return fmt.Errorf("%w: %d bytes wait for the cluster to be ready", ErrBacklog, o.queued)
		}
		o.queue = append(o.queue, raw)
		o.queued += len(raw)
		return nil
	}
	return route(raw)
}

// flush sends what was queued; sends that come later wait on the lock, so
// they cannot overtake.
func (o *outbox) flush(route func([]byte) error, log *slog.Logger) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ready || o.closed {
		return
	}
	o.ready = true
	for i, raw := range o.queue {
		if err := route(raw); err != nil {
			log.Warn("messages queued before the cluster was ready not sent", "count", len(o.queue)-i, "err", err)
			break
		}
	}
	if len(o.queue) > 0 {
		log.Debug("sent messages queued before the cluster was ready", "count", len(o.queue))
	}
	o.queue, o.queued = nil, 0
}

func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.queue, o.queued = nil, 0
	o.mu.Unlock()
}

// endpoint is the framework's side of the Messenger (see msglink); a
// separate type so that none of it is part of Messenger's API.
type endpoint struct{ m *Messenger }

func (e endpoint) Deliver(f wire.Frame) { e.m.deliver(f, nil) }

// deliver takes a frame from a channel's reader: from the master's channel
// (p nil) or from a worker's direct channel to the agent.
func (m *Messenger) deliver(f wire.Frame, p *peer) {
	e := endpoint{m}
	switch f.Kind {
	case wire.KindReply, wire.KindReplyError:
		// Straight from the reader: a handler waiting for a reply must not
		// wait behind itself in the inbox.
		e.m.resolve(f)
	case wire.KindCall:
		if e.m.in.reserveCall(&e.m.handlers) {
			e.m.serve(&f) // starts the handler's goroutine and returns
			return
		}
		e.m.in.push(f, p, e.m)
	case wire.KindMessage:
		e.m.in.push(f, p, e.m)
	case wire.KindCancel:
		e.m.cancelHandler(f.FromPID, f.CallID, "the caller gave up")
	}
}

func (e endpoint) Peer(pid int, conn *wire.Conn) {
	m := e.m
	if m.role == wire.RoleAgent {
		m.addPeer(pid, conn)
		return
	}
	m.path.attach(m, pid, conn)
	go m.readAgent(pid, conn)
}

func (e endpoint) Members(mem msglink.Members) { e.m.setMembers(mem) }

// Work counts as waiting what is queued for the dispatcher (messages, and
// calls behind them): each call runs in its own goroutine, so a call that
// runs long, or a handler stuck on its own, holds up nobody but its caller,
// whose deadline ends it; what can hang the agent is its dispatcher.
func (e endpoint) Work() (inFlight int64, progress uint64) {
	return e.m.queued.Load(), e.m.progress.Load()
}

// Progress tells the hang detection that this process is making progress.
// The agent is replaced as hung when messages wait for its On functions and
// for the hang timeout (framework.WithHangTimeout) none was handled, no
// Handle function returned and nothing called Progress: an On function
// that legitimately runs that long calls it now and then.
func (m *Messenger) Progress() { m.progress.Add(1) }

func (e endpoint) HandOver() { e.m.handOver() }

func (e endpoint) ClusterReady() { e.m.out.flush(e.m.route, e.m.log) }

func (e endpoint) Close(ctx context.Context) error { return e.m.close(ctx) }

func (e endpoint) Drain(ctx context.Context) error {
	if e.m.role == wire.RoleAgent {
		e.m.leavePeers(ctx)
	}
	return e.m.drain(ctx)
}

// drain closes the inbox and waits, until ctx ends, for what it took to be
// handled: the dispatcher empties the inbox, then the handlers return.
func (m *Messenger) drain(ctx context.Context) error {
	m.in.close()
	done := make(chan struct{})
	go func() {
		<-m.in.done
		m.handlers.Wait()
		close(done)
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var orphansSince time.Time
	for {
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			if n := m.running.Load(); n > 0 {
				return fmt.Errorf("messenger: %d call handlers still running: %w", n, context.Cause(ctx))
			}
			return nil
		case now := <-tick.C:
			// Handlers whose callers gave up or are gone get OrphanWait,
			// not the whole stop timeout: nobody waits for their answers,
			// and a reload waits for this drain.
			select {
			case <-m.in.done:
			default:
				continue
			}
			if n, orphans := m.inflight.counts(); n == 0 || orphans < n {
				orphansSince = time.Time{}
				continue
			}
			if orphansSince.IsZero() {
				orphansSince = now
			} else if now.Sub(orphansSince) >= OrphanWait {
				m.log.Warn("not waiting for call handlers whose callers gave up or are gone: they ignored their context",
					"handlers", m.running.Load(), "waited", OrphanWait.String())
				return nil
			}
		}
	}
}

// close stops the Messenger: sends fail, pending calls fail, the inbox is
// drained by the dispatcher, and running handlers get until ctx ends.
func (m *Messenger) close(ctx context.Context) error {
	m.closing.Store(true)
	m.out.close()
	m.calls.failAll(fmt.Errorf("%w: the process is stopping or its master went away", ErrClosed))
	defer m.cancel()
	err := m.drain(ctx)
	m.closePeers()
	m.path.close()
	return err
}
