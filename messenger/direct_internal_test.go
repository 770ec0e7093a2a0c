//go:build unix

package messenger

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/broodhq/brood/internal/msglink"
	"github.com/broodhq/brood/internal/wire"
)

func testPair(t *testing.T) (*wire.Conn, *wire.Conn) {
	t.Helper()
	a, b, err := wire.Pair()
	if err != nil {
		t.Skip(err)
	}
	ca, err := wire.FileConn(a, 0)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := wire.FileConn(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ca.Close(0); cb.Close(0) })
	return ca, cb
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testMessenger is a Messenger of the role whose master is the returned
// conn's other end.
func testMessenger(t *testing.T, role wire.Role) (*Messenger, msglink.Endpoint, *wire.Conn) {
	t.Helper()
	mine, master := testPair(t)
	link := &msglink.Link{Conn: mine, Role: role}
	m := New(Config{Logger: quiet(), Link: link})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		link.Endpoint.Close(ctx)
	})
	return m, link.Endpoint, master
}

// An agent that stops reading cannot grow a worker's memory past the
// documented bound: once the messages it has not acknowledged reach it,
// SendToAgent fails with ErrBacklog.
func TestDirectAgentThatStopsReadingBoundsTheWorker(t *testing.T) {
	m, ep, _ := testMessenger(t, wire.RoleApp)
	ep.Members(msglink.Members{Agent: 4242, Apps: []int{1}})
	ep.ClusterReady()
	workerEnd, agentEnd := testPair(t) // the agent never reads agentEnd
	_ = agentEnd
	ep.Peer(4242, workerEnd)

	data := strings.Repeat("x", 64<<10)
	sent := 0
	var err error
	for sent < 200<<20 {
		if err = m.SendToAgent("m", data); err != nil {
			break
		}
		sent += len(data)
	}
	if !errors.Is(err, ErrBacklog) {
		t.Fatalf("after %d MiB to an agent that does not read: %v; want ErrBacklog", sent>>20, err)
	}
	m.path.mu.Lock()
	unacked, limit := m.path.unackedN, m.path.limit
	m.path.mu.Unlock()
	if unacked > limit || sent > limit+len(data)*2 {
		t.Errorf("%d bytes kept unacknowledged, %d sent; want both within the bound of %d", unacked, sent, limit)
	}
}

// Calls to an agent that reads them but answers none are bounded as the
// messages are: each is kept for a hand-over until it is answered, and
// once the bytes kept reach the bound, CallAgent fails at once with
// ErrBacklog. Callers that give up free their share.
func TestDirectAgentThatAnswersNoCallBoundsTheWorker(t *testing.T) {
	m, ep, _ := testMessenger(t, wire.RoleApp)
	ep.Members(msglink.Members{Agent: 4242, Apps: []int{1}})
	ep.ClusterReady()
	workerEnd, agentEnd := testPair(t)
	go func() {
		for {
			if _, err := agentEnd.Read(); err != nil {
				return
			}
		}
	}()
	ep.Peer(4242, workerEnd)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := Bytes(make([]byte, 1<<20))
	m.path.mu.Lock()
	limit := m.path.limit
	m.path.mu.Unlock()
	callers := limit/len(data) + 8
	errs := make(chan error, callers)
	for range callers {
		go func() { errs <- m.CallAgent(ctx, "never", data, nil) }()
	}
	backlog := 0
	for backlog < 8 {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrBacklog) {
				t.Fatalf("a call to an agent that answers none: %v; want ErrBacklog once the bound is reached", err)
			}
			backlog++
		case <-time.After(30 * time.Second):
			t.Fatalf("%d of %d calls refused after 30s; want every call past the bound of %d bytes refused", backlog, callers, limit)
		}
	}
	m.path.mu.Lock()
	kept := m.path.callsN
	m.path.mu.Unlock()
	if kept > limit {
		t.Errorf("%d bytes of calls kept; bound %d", kept, limit)
	}
	cancel()
	for range callers - backlog {
		<-errs
	}
	m.path.mu.Lock()
	kept = m.path.callsN
	m.path.mu.Unlock()
	if kept != 0 {
		t.Errorf("%d bytes of calls kept after every caller gave up; want 0", kept)
	}
}

// A call written to a channel whose agent has just gone, before the
// reader noticed, never reached it: it is held for the next agent rather
// than failed with ErrTargetGone, unless it was for that agent's pid.
func TestCallToAJustClosedChannelIsHeld(t *testing.T) {
	m, _, _ := testMessenger(t, wire.RoleApp)
	workerEnd, _ := testPair(t)
	p := &agentPath{limit: 1 << 20, conn: workerEnd, pid: 4242}
	workerEnd.Close(0)
	call := (&wire.Frame{Kind: wire.KindCall, Route: wire.ToAgent, CallID: 1, Action: "a"}).Encode()
	if err := p.send(m, call); err != nil {
		t.Fatalf("a call to a just-closed channel: %v; want it held", err)
	}
	if len(p.held) != 1 || len(p.calls) != 0 || p.callsN != 0 {
		t.Fatalf("held %d, unanswered %d (%d bytes); want the call held, not counted as sent", len(p.held), len(p.calls), p.callsN)
	}
	toPID := (&wire.Frame{Kind: wire.KindCall, Route: wire.ToPID, ToPID: 4242, CallID: 2, Action: "a"}).Encode()
	if err := p.sendTo(4242, toPID); !errors.Is(err, ErrTargetGone) {
		t.Fatalf("a call for the gone agent's pid: %v; want ErrTargetGone", err)
	}
}

// A new agent whose channel is already closed when it is handed the hold
// takes none of it: the calls it could not be sent, and what follows them,
// stay held for the next agent.
func TestHoldOutlivesAnAgentGoneWhileHandedIt(t *testing.T) {
	m, _, _ := testMessenger(t, wire.RoleApp)
	id, _ := m.calls.add(0)
	defer m.calls.remove(id)
	call := (&wire.Frame{Kind: wire.KindCall, Route: wire.ToAgent, CallID: id, Action: "a"}).Encode()
	msg := (&wire.Frame{Kind: wire.KindMessage, Route: wire.ToAgent, Action: "m"}).Encode()
	p := &agentPath{limit: 1 << 20, held: [][]byte{call, msg}, heldN: len(call) + len(msg)}
	gone, _ := testPair(t)
	gone.Close(0)
	p.attach(m, 4242, gone)
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.held) != 2 || p.heldN != len(call)+len(msg) || len(p.calls) != 0 {
		t.Fatalf("held %d (%d bytes), unanswered %d after an agent gone while handed the hold; want both frames still held", len(p.held), p.heldN, len(p.calls))
	}
}

// A malformed frame on a direct channel resets that channel only: the
// agent asks the master for a new pair, and answers over the new one.
func TestDirectMalformedFrameResetsOnlyThatChannel(t *testing.T) {
	m, ep, master := testMessenger(t, wire.RoleAgent)
	m.Handle("echo", func(_ context.Context, msg Message) (any, error) { return msg.Data, nil })
	ep.Members(msglink.Members{Agent: 1, Apps: []int{4242}})
	agentEnd, workerEnd := testPair(t)
	ep.Peer(4242, agentEnd)

	if err := workerEnd.Send([]byte{3, 0, 0, 0, 'b', 'a', 'd'}); err != nil {
		t.Fatal(err)
	}
	for {
		raw, err := readTimeout(master, 5*time.Second)
		if err != nil {
			t.Fatalf("no reset request to the master: %v", err)
		}
		f, _ := wire.Parse(raw)
		if f.Kind != wire.KindControl || f.Action != msglink.CtlDirectReset {
			continue
		}
		var d msglink.Direct
		if json.Unmarshal(f.Data, &d) != nil || d.Peer != 4242 {
			t.Fatalf("reset request %s; want peer 4242", f.Data)
		}
		break
	}
	// The master passes a new pair: a call over it is answered.
	agentEnd2, workerEnd2 := testPair(t)
	ep.Peer(4242, agentEnd2)
	call := wire.Frame{Kind: wire.KindCall, Route: wire.ToAgent, From: wire.RoleApp, FromPID: 4242, CallID: 7, Action: "echo", Data: []byte(`"hi"`)}
	if err := workerEnd2.SendNow(call.Encode()); err != nil {
		t.Fatal(err)
	}
	raw, err := readTimeout(workerEnd2, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := wire.Parse(raw); f.Kind != wire.KindReply || f.CallID != 7 || string(f.Data) != `"hi"` {
		t.Errorf("reply over the new channel: %+v", f)
	}
}

func readTimeout(c *wire.Conn, d time.Duration) ([]byte, error) {
	type res struct {
		raw []byte
		err error
	}
	ch := make(chan res, 1)
	go func() { raw, err := c.Read(); ch <- res{raw, err} }()
	select {
	case r := <-ch:
		return r.raw, r.err
	case <-time.After(d):
		return nil, errors.New("timed out")
	}
}

// A hung agent, told so, answers the calls its stuck dispatcher has not
// started with CodeHandOver, including one in the batch the dispatcher is
// working through, and every call delivered after; it tells the worker to
// hold what is new and confirms to the master. The calls handed back are
// never started, even once the dispatcher moves on.
func TestHungAgentHandsBackCallsItDidNotStart(t *testing.T) {
	m, ep, master := testMessenger(t, wire.RoleAgent)
	var started atomic.Int32
	m.Handle("echo", func(_ context.Context, msg Message) (any, error) { started.Add(1); return msg.Data, nil })
	release := make(chan struct{})
	inHang := make(chan struct{})
	m.On("slow", func(Message) { time.Sleep(100 * time.Millisecond) })
	m.On("hang", func(Message) { close(inHang); <-release })
	ep.Members(msglink.Members{Agent: 1, Apps: []int{4242}})
	agentEnd, workerEnd := testPair(t)
	ep.Peer(4242, agentEnd)

	send := func(kind wire.Kind, action string, id uint64) {
		t.Helper()
		f := wire.Frame{Kind: kind, Route: wire.ToAgent, From: wire.RoleApp, FromPID: 4242, CallID: id, Action: action, Data: []byte(`"x"`)}
		if err := workerEnd.SendNow(f.Encode()); err != nil {
			t.Fatal(err)
		}
	}
	// While "slow" runs, "hang" and call 1 queue up: the dispatcher takes
	// them in one batch and sticks in "hang" with call 1 behind it.
	send(wire.KindMessage, "slow", 0)
	time.Sleep(20 * time.Millisecond)
	send(wire.KindMessage, "hang", 0)
	send(wire.KindCall, "echo", 1)
	<-inHang
	send(wire.KindCall, "echo", 2) // queued behind the hang, in the inbox
	time.Sleep(20 * time.Millisecond)

	ep.HandOver()
	send(wire.KindCall, "echo", 3) // after: handed back at once
	handed := map[uint64]bool{}
	sawHung := false
	for len(handed) < 3 || !sawHung {
		raw, err := readTimeout(workerEnd, 5*time.Second)
		if err != nil {
			t.Fatalf("handed back %v, hung frame %v: %v", handed, sawHung, err)
		}
		f, _ := wire.Parse(raw)
		switch {
		case f.Kind == wire.KindControl && f.Action == msglink.CtlHung:
			sawHung = true
		case f.Kind == wire.KindReplyError && isHandOver(f.Data):
			handed[f.CallID] = true
		default:
			t.Fatalf("the worker got %+v; want hand-overs and the hung frame", f)
		}
	}
	for {
		raw, err := readTimeout(master, 5*time.Second)
		if err != nil {
			t.Fatalf("no confirmation to the master: %v", err)
		}
		if f, _ := wire.Parse(raw); f.Kind == wire.KindControl && f.Action == msglink.CtlHung {
			var h msglink.Hung
			if json.Unmarshal(f.Data, &h) != nil || h.Calls != 2 {
				t.Errorf("confirmation %s; want 2 calls handed back", f.Data)
			}
			break
		}
	}
	close(release)
	time.Sleep(50 * time.Millisecond)
	if n := started.Load(); n != 0 {
		t.Errorf("%d calls handed back were started too", n)
	}
}
