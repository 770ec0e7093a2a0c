package reuseport

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// TestSharedSocketTakesEveryConnection binds a group with a shared socket
// and checks that every new connection reaches it, also after a Remove
// moved the shared socket to another index of the kernel's group and after
// an Add.
func TestSharedSocketTakesEveryConnection(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g, err := Bind(ctx, "127.0.0.1:0", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.EnableShared(ctx); err != nil {
		t.Fatal(err)
	}
	if got := g.Order(); got[len(got)-1] != SharedSlot {
		t.Fatalf("order %v; want the shared socket last", got)
	}
	serveGroup(t, g)
	src := netip.MustParseAddr("127.0.0.1")
	check := func(when string) {
		t.Helper()
		for range 30 {
			slot, err := slotFor(ctx, src, g.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			if slot != SharedSlot {
				t.Fatalf("%s: a connection reached slot %d's socket; want the shared one (order %v)", when, slot, g.Order())
			}
		}
	}
	check("after EnableShared")
	// Slot 1 is at index 0: the shared socket, last, moves into it.
	if err := g.Remove(1); err != nil {
		t.Fatal(err)
	}
	if got := g.Order(); got[0] != SharedSlot {
		t.Fatalf("order %v after removing slot 1; want the shared socket first", got)
	}
	check("after Remove")
	if _, err := g.Add(ctx, 4); err != nil {
		t.Fatal(err)
	}
	serveSlot(t, g, 4)
	check("after Add")
}

func TestSharedRefusesASticky(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g, err := Bind(ctx, "127.0.0.1:0", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.EnableSticky(); err != nil {
		t.Fatal(err)
	}
	if err := g.EnableShared(ctx); err == nil {
		t.Fatal("EnableShared on a sticky group succeeded; want an error")
	}
}
