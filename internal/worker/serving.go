package worker

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/broodhq/brood/internal/child"
	"github.com/broodhq/brood/internal/protocol"
)

// openSockets takes over the slot sockets this worker inherited: its own
// first, then any it serves for slots that were scaled away.
func openSockets(ids []string) ([]net.Listener, error) {
	var lns []net.Listener
	for i, id := range ids {
		f := os.NewFile(uintptr(protocol.FDSlot+i), "brood-socket-"+id)
		ln, err := net.FileListener(f)
		f.Close() // FileListener made its own close-on-exec copy
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("take over socket %s: %w", id, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// tracker counts what the master needs to tell a busy worker from a hung
// one, and makes a draining worker close each connection after its next
// response instead of cutting idle keep-alive connections under clients.
type tracker struct {
	next      http.Handler
	inFlight  atomic.Int64
	completed atomic.Uint64
	progress  atomic.Uint64 // completions and response writes
	draining  atomic.Bool
	conns     atomic.Int64  // open connections, from ConnState
	accepted  atomic.Uint64 // connections accepted since the worker started
	hijacked  atomic.Int64  // handlers still running on a hijacked connection
	peakConns atomic.Int64  // the most open at once since the last heartbeat
	gate      *gate         // balance shared; nil otherwise
}

func (t *tracker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if t.draining.Load() {
		// net/http closes the connection after this response: the client
		// opens its next one on a socket a live worker accepts from.
		w.Header().Set("Connection", "close")
	}
	t.inFlight.Add(1)
	pw := &progressWriter{ResponseWriter: w, t: t}
	defer func() {
		if pw.hijacked {
			t.hijacked.Add(-1)
		} else {
			t.inFlight.Add(-1)
		}
		t.completed.Add(1)
		t.progress.Add(1)
	}()
	t.next.ServeHTTP(pw, r)
}

func (t *tracker) connState(_ net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		t.accepted.Add(1)
		n := t.conns.Add(1)
		for peak := t.peakConns.Load(); n > peak && !t.peakConns.CompareAndSwap(peak, n); peak = t.peakConns.Load() {
		}
	case http.StateClosed, http.StateHijacked:
		t.conns.Add(-1)
		if t.gate != nil {
			t.gate.wake()
		}
	}
}

// progressWriter counts writes as progress, so that a long streaming
// response is not mistaken for a hang; a hijacked connection (a websocket)
// leaves the count of in-flight requests.
type progressWriter struct {
	http.ResponseWriter
	t        *tracker
	hijacked bool
}

func (w *progressWriter) Write(b []byte) (int, error) {
	w.t.progress.Add(1)
	return w.ResponseWriter.Write(b)
}

func (w *progressWriter) Flush() {
	w.t.progress.Add(1)
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *progressWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && !w.hijacked {
		w.hijacked = true
		w.t.inFlight.Add(-1)
		w.t.hijacked.Add(1)
	}
	return c, rw, err
}

// waitHijacked waits until every handler running on a hijacked connection
// has returned, or ctx ends; it returns how many were left.
func (t *tracker) waitHijacked(ctx context.Context) int64 {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		n := t.hijacked.Load()
		if n == 0 {
			return 0
		}
		select {
		case <-ctx.Done():
			return n
		case <-tick.C:
		}
	}
}

func (w *progressWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// drainIdle waits, at most until ctx ends or grace passes, for clients to
// finish with their keep-alive connections: each one's next response says
// Connection: close. Closing an idle connection instead races the client's
// next request on it, which then fails.
func (t *tracker) drainIdle(ctx context.Context, grace time.Duration) {
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for t.conns.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-tick.C:
		}
	}
}

// heartbeat reports to the master until ctx ends, and asks to be recycled
// once the request limit is reached.
func (t *tracker) heartbeat(ctx context.Context, c Config, link *child.Link) {
	limit := c.MaxRequests
	if limit > 0 && c.MaxJitter > 0 {
		limit += rand.Uint64N(c.MaxJitter + 1)
	}
	asked := false
	tick := time.NewTicker(c.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		done := t.completed.Load()
		link.Send(protocol.Control(protocol.Heartbeat, protocol.HeartbeatMsg{Requests: done, InFlight: t.inFlight.Load(), Progress: t.progress.Load(), Conns: t.peakConns.Swap(t.conns.Load()), Accepted: t.accepted.Load()}))
		if limit > 0 && done >= limit && !asked && !t.draining.Load() {
			asked = true
			link.Send(protocol.Control(protocol.Recycle, protocol.RecycleMsg{Requests: done}))
		}
	}
}
