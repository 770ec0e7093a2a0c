package worker

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/broodhq/brood/internal/child"
	"github.com/broodhq/brood/internal/protocol"
	"github.com/broodhq/brood/internal/wire"
	"github.com/broodhq/brood/metrics"
)

// gate decides, with balance shared, when a worker accepts from the socket
// that every worker serves. A worker accepts while it holds fewer
// connections than its share (the master's ShareMsg, sent on each
// heartbeat): the first worker to wake would otherwise drain the queue and
// keep every keep-alive connection while the others idle. A worker busy
// on the CPU does not reach its accept loop at all, so an idle one takes the
// connection that the kernel's hash would have queued behind it.
//
// The share lags the heartbeats, so a connection that waits while every
// worker is at its share is taken anyway: by an idle worker once it has seen
// it waiting, by a busy one after overflowBusy. No count the master sent,
// however stale, leaves a connection in the queue for longer.
type gate struct {
	share atomic.Int64
	conns func() int64
	busy  func() bool
	// poke wakes the waiting Accept when a connection closed or the share
	// changed.
	poke chan struct{}
}

const (
	// gatePoll is how often a worker at its share looks at the queue.
	gatePoll = 2 * time.Millisecond
	// overflowBusy is how long a connection waits, every worker being at
	// its share, before a worker with requests in flight takes it.
	overflowBusy = 10 * time.Millisecond
)

func newGate(conns func() int64, busy func() bool) *gate {
	g := &gate{conns: conns, busy: busy, poke: make(chan struct{}, 1)}
	// Until the master's first word: one connection each, then the
	// overflow spreads the rest.
	g.share.Store(1)
	return g
}

func (g *gate) setShare(n int64) {
	if n < 1 {
		n = 1
	}
	if g.share.Swap(n) != n {
		g.wake()
	}
}

func (g *gate) wake() {
	select {
	case g.poke <- struct{}{}:
	default:
	}
}

func (g *gate) open() bool { return g.conns() < g.share.Load() }

// gatedListener is the shared socket's listener as net/http sees it.
type gatedListener struct {
	*net.TCPListener
	g         *gate
	closed    chan struct{}
	closeOnce sync.Once
}

func (g *gate) listener(ln net.Listener) (net.Listener, error) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil, errors.New("the shared socket is not a TCP listener")
	}
	return &gatedListener{TCPListener: tl, g: g, closed: make(chan struct{})}, nil
}

func (l *gatedListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.TCPListener.Close()
}

// Accept waits at the gate, then accepts. A worker let through by the
// overflow accepts with a short deadline: the connection it saw may have
// gone to another worker, and it must not wait in accept, over its share,
// for the next one.
func (l *gatedListener) Accept() (net.Conn, error) {
	if l.g.open() {
		return l.acceptBy(time.Time{}) // the common case: no ticker
	}
	var waiting time.Time // since when a connection waits, every worker full
	tick := time.NewTicker(gatePoll)
	defer tick.Stop()
	for {
		if l.g.open() {
			return l.acceptBy(time.Time{})
		}
		if !waiting.IsZero() && (!l.g.busy() || time.Since(waiting) >= overflowBusy) {
			c, err := l.acceptBy(time.Now().Add(gatePoll))
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return c, err
			}
			waiting = time.Time{}
		}
		select {
		case <-l.closed:
			return nil, net.ErrClosed
		case <-l.g.poke:
		case <-tick.C:
			if q, _, ok := metrics.AcceptQueue([]net.Listener{l.TCPListener}); ok && q > 0 {
				if waiting.IsZero() {
					waiting = time.Now()
				}
			} else {
				waiting = time.Time{}
			}
		}
	}
}

// acceptBy accepts, waiting until deadline (the zero time: for ever).
func (l *gatedListener) acceptBy(deadline time.Time) (net.Conn, error) {
	if err := l.SetDeadline(deadline); err != nil {
		return nil, err
	}
	return l.TCPListener.Accept()
}

// gateShared puts the gate in front of the shared socket, if the worker
// serves one (balance shared), and follows the master's share.
func (t *tracker) gateShared(ids []string, lns []net.Listener, link *child.Link) error {
	i := slices.Index(ids, protocol.SharedSocket)
	if i < 0 {
		return nil
	}
	t.gate = newGate(t.conns.Load, func() bool { return t.inFlight.Load() > 0 })
	gl, err := t.gate.listener(lns[i])
	if err != nil {
		return fmt.Errorf("balance shared: %w", err)
	}
	lns[i] = gl
	link.Handle(protocol.Share, func(f wire.Frame) {
		var msg protocol.ShareMsg
		if err := protocol.Decode(f, &msg); err == nil {
			t.gate.setShare(msg.Conns)
		}
	})
	return nil
}
