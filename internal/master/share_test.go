package master

import (
	"testing"

	"github.com/broodhq/brood/internal/protocol"
)

// With balance shared every worker is given the shared socket after its
// own, and each heartbeat is answered with the workers' fair share of the
// connections they reported, plus one.
func TestSharedBalanceSendsTheFairShare(t *testing.T) {
	c := testConfig(3)
	c.Shared = true
	h := start(t, c)
	_, ws := h.running(3)
	for _, w := range ws {
		if got, want := envOf(w.spec, protocol.EnvSockets), protocol.SharedSocket; len(got) < 2 || got[len(got)-1:] != want {
			t.Errorf("worker %d serves sockets %q; want its own and then the shared one %q", w.slot, got, want)
		}
		if n := len(w.spec.Files); n != 3 {
			t.Errorf("worker %d inherits %d files; want the channel, its socket and the shared one", w.slot, n)
		}
	}
	share := func(w *fakeProc, conns int64) int64 {
		t.Helper()
		w.send(t, protocol.Control(protocol.Heartbeat, protocol.HeartbeatMsg{Conns: conns}))
		var msg protocol.ShareMsg
		if err := protocol.Decode(w.waitAction(t, protocol.Share), &msg); err != nil {
			t.Fatal(err)
		}
		return msg.Conns
	}
	if got := share(ws[0], 0); got != 1 {
		t.Errorf("share with no connections %d; want 1", got)
	}
	share(ws[1], 7)
	// 7 + 0 + 2 over 3 workers is 3, plus one.
	if got := share(ws[2], 2); got != 4 {
		t.Errorf("share of 9 connections over 3 workers %d; want 4", got)
	}
}

// Without balance shared the workers get no shared socket and no share.
func TestHashBalanceSendsNoShare(t *testing.T) {
	h := start(t, testConfig(2))
	_, ws := h.running(2)
	if got := envOf(ws[0].spec, protocol.EnvSockets); got != "1" {
		t.Errorf("worker 1 serves sockets %q; want \"1\"", got)
	}
	ws[0].send(t, protocol.Control(protocol.Heartbeat, protocol.HeartbeatMsg{Conns: 5}))
	h.eventually("the heartbeat is heard", func(m *master) bool {
		for c := range m.live {
			if c.slot == 1 {
				return c.conns == 5
			}
		}
		return false
	})
	select {
	case f := <-ws[0].frames:
		if f.Action == protocol.Share {
			t.Errorf("a hash cluster sent a share")
		}
	default:
	}
}
