package master

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/broodhq/brood/internal/protocol"
	"github.com/broodhq/brood/internal/wire"
)

// agentEnd is a fake agent: the far end of a socketpair whose near end the
// link sends to.
type agentEnd struct {
	near *wire.Conn // the master's side
	far  *wire.Conn // the agent's side
}

func newAgentEnd(t *testing.T) agentEnd {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Skipf("no socketpair: %v", err)
	}
	var conns [2]*wire.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "pair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = wire.NewConn(c, 0)
	}
	t.Cleanup(func() { conns[0].Close(time.Second); conns[1].Close(time.Second) })
	return agentEnd{near: conns[0], far: conns[1]}
}

// actions reads n frames and returns their actions.
func (a agentEnd) actions(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		raw, err := a.far.Read()
		if err != nil {
			t.Fatal(err)
		}
		f, _ := wire.Parse(raw)
		out = append(out, f.Action)
	}
	return out
}

func frame(kind wire.Kind, action string, caller int, id uint64) []byte {
	f := wire.Frame{Kind: kind, Route: wire.ToAgent, FromPID: caller, CallID: id, Action: action, Data: []byte(`1`)}
	return f.Encode()
}

func msg(action string) []byte { return frame(wire.KindMessage, action, 7, 0) }

func TestAgentLinkHandsTheNextAgentWhatTheLastDidNotHandle(t *testing.T) {
	var logs bytes.Buffer
	l := &agentLink{}
	l.setup(slog.New(slog.NewTextHandler(&logs, nil)), 1<<20)
	old, next := newAgentEnd(t), newAgentEnd(t)

	l.attach(old.near, 100)
	for i := range 4 {
		if why := l.send(msg("m" + strconv.Itoa(i))); why != "" {
			t.Fatal(why)
		}
	}
	l.send(frame(wire.KindCall, "c", 7, 9))
	if got := old.actions(t, 5); !slices.Equal(got, []string{"m0", "m1", "m2", "m3", "c"}) {
		t.Fatalf("old agent got %v", got)
	}
	l.ack(100, 2) // handled m0 and m1, then died
	l.ack(555, 4) // an ack from someone else changes nothing

	dropped, unanswered := l.detach(true, false)
	if len(dropped) != 0 || !slices.Equal(unanswered, []callKey{{7, 9}}) {
		t.Fatalf("detach: dropped %d, unanswered %v; want nothing dropped and call 7/9 unanswered", len(dropped), unanswered)
	}
	l.send(msg("m4")) // while there is no agent
	l.send(frame(wire.KindCall, "c2", 8, 1))

	l.attach(next.near, 200)
	if got := next.actions(t, 4); !slices.Equal(got, []string{"m2", "m3", "m4", "c2"}) {
		t.Errorf("next agent got %v; want the unacknowledged m2 m3, then m4 and c2 held for it", got)
	}
	if !strings.Contains(logs.String(), "delivered held messages to the new agent") {
		t.Errorf("no log of the delivery:\n%s", logs.String())
	}
	// The reply to c2 clears it; the next death leaves nothing to fail.
	l.replied(200, 8, 1)
	if _, unanswered := l.detach(true, false); len(unanswered) != 0 {
		t.Errorf("answered call still counted as unanswered: %v", unanswered)
	}
}

// Calls a hung agent hands back (relay mode) go to the next agent after
// what it did not acknowledge, and are no longer among its unanswered
// calls; one made to the hung agent's pid is not held for another.
func TestAgentLinkHandsTheNextAgentTheCallsAHungOneHandedBack(t *testing.T) {
	l := &agentLink{}
	l.setup(slog.New(slog.NewTextHandler(io.Discard, nil)), 1<<20)
	old, next := newAgentEnd(t), newAgentEnd(t)
	l.attach(old.near, 100)
	l.send(msg("m0"))
	l.send(frame(wire.KindCall, "running", 7, 1))
	l.send(frame(wire.KindCall, "queued", 7, 2))
	toPID := wire.Frame{Kind: wire.KindCall, Route: wire.ToPID, ToPID: 100, FromPID: 8, CallID: 3, Action: "to-pid"}
	l.send(toPID.Encode())
	old.actions(t, 4)
	if why := l.handOver(100, callKey{7, 2}); why != "" {
		t.Fatalf("hand-over of a call the agent had: %s", why)
	}
	if why := l.handOver(100, callKey{8, 3}); why == "" {
		t.Error("a call made to the hung agent's pid was held for the next agent")
	}
	if why := l.handOver(100, callKey{7, 99}); why == "" {
		t.Error("a hand-over of a call the agent never had was accepted")
	}
	_, unanswered := l.detach(true, false)
	if !slices.Equal(unanswered, []callKey{{7, 1}}) {
		t.Errorf("unanswered %v; want only the call that was running, 7/1", unanswered)
	}
	l.attach(next.near, 200)
	if got := next.actions(t, 2); !slices.Equal(got, []string{"m0", "queued"}) {
		t.Errorf("next agent got %v; want the unacknowledged m0, then the handed-back call", got)
	}
}

func TestAgentLinkHoldIsBounded(t *testing.T) {
	var logs bytes.Buffer
	l := &agentLink{}
	one := len(msg("m"))
	l.setup(slog.New(slog.NewTextHandler(&logs, nil)), 3*one)
	l.detach(true, false)
	for i := range 3 {
		if why := l.send(msg("m")); why != "" {
			t.Fatalf("message %d within the bound refused: %s", i, why)
		}
	}
	if why := l.send(msg("m")); !strings.Contains(why, "hold for it is full") {
		t.Errorf("message past the bound: %q; want it refused", why)
	}
	if why := l.send(frame(wire.KindCall, "c", 7, 1)); why == "" {
		t.Errorf("call past the bound accepted")
	}
	if strings.Count(logs.String(), "hold for the restarting agent is full") != 1 {
		t.Errorf("want one warning for the overflow:\n%s", logs.String())
	}

	// Nobody is coming back: what was held is dropped and returned.
	dropped, _ := l.detach(false, false)
	if len(dropped) != 3 {
		t.Errorf("dropped %d, want the 3 held", len(dropped))
	}
	if why := l.send(msg("m")); why != "there is no agent" {
		t.Errorf("send with no agent coming: %q", why)
	}
}

func TestAgentLinkRefusesWhatTheAgentCannotKeepUpWith(t *testing.T) {
	l := &agentLink{}
	one := len(msg("m"))
	l.setup(slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)), 2*one)
	a := newAgentEnd(t)
	l.attach(a.near, 100)
	l.send(msg("m"))
	l.send(msg("m"))
	if why := l.send(msg("m")); !strings.Contains(why, "not keeping up") {
		t.Errorf("third unacknowledged message: %q; want refused", why)
	}
	l.ack(100, 2)
	if why := l.send(msg("m")); why != "" {
		t.Errorf("after the ack: %q; want accepted", why)
	}
}

// An agent being stopped gets nothing after drain, so the "drained" frame
// is the last it reads; its answers and acknowledgements still count until it
// exits, and what it left goes to the next agent first.
func TestAgentLinkDrainsAStoppingAgent(t *testing.T) {
	l := &agentLink{}
	l.setup(slog.New(slog.NewTextHandler(io.Discard, nil)), 1<<20)
	old, next := newAgentEnd(t), newAgentEnd(t)

	l.attach(old.near, 100)
	l.send(msg("m0"))
	l.send(msg("m1"))
	l.send(frame(wire.KindCall, "c", 7, 9))
	l.drain(old.near, true)
	old.near.Send(protocol.Control(protocol.Drained, nil).Encode()) // what agentDraining sends next
	l.send(msg("m2"))
	l.send(frame(wire.KindCall, "c2", 8, 1))
	if got := old.actions(t, 4); !slices.Equal(got, []string{"m0", "m1", "c", protocol.Drained}) {
		t.Fatalf("stopping agent got %v; want m0 m1 c and then its drained frame, nothing after", got)
	}

	// It handles m0 and answers c while stopping; its exit is not seen yet.
	l.ack(100, 1)
	l.replied(100, 7, 9)
	if dropped, unanswered := l.detach(true, true); len(dropped)+len(unanswered) != 0 {
		t.Fatalf("while the old agent is alive: dropped %d, unanswered %v; want nothing", len(dropped), unanswered)
	}
	// It exits without handling m1.
	if _, unanswered := l.detach(true, false); len(unanswered) != 0 {
		t.Errorf("answered call counted as unanswered: %v", unanswered)
	}
	l.attach(next.near, 200)
	if got := next.actions(t, 3); !slices.Equal(got, []string{"m1", "m2", "c2"}) {
		t.Errorf("next agent got %v; want m1 (unhandled by the old one), then m2 and c2 held for it", got)
	}
}

// At the cluster's stop no agent is coming: after drain, calls fail at once
// instead of waiting, and the stopping agent's unanswered calls are failed
// when it exits.
func TestAgentLinkDrainWithoutSuccessor(t *testing.T) {
	l := &agentLink{}
	l.setup(slog.New(slog.NewTextHandler(io.Discard, nil)), 1<<20)
	old := newAgentEnd(t)
	l.attach(old.near, 100)
	l.send(frame(wire.KindCall, "c", 7, 9))
	l.drain(old.near, false)
	if why := l.send(frame(wire.KindCall, "c2", 8, 1)); why == "" {
		t.Errorf("a call after drain without a successor was accepted")
	}
	if _, unanswered := l.detach(false, false); !slices.Equal(unanswered, []callKey{{7, 9}}) {
		t.Errorf("unanswered %v, want the call the agent never answered", unanswered)
	}
}
