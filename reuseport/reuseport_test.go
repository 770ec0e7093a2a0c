package reuseport

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

func TestBindGroupSharesOnePort(t *testing.T) {
	g, err := Bind(context.Background(), "127.0.0.1:0", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if g.Addr().Port == 0 {
		t.Fatal("group has no port")
	}
	// Every slot's socket accepts on the same port; the kernel spreads
	// connections across them, so accept on all of them at once.
	accepted := make(chan int, 64)
	for slot := 1; slot <= 3; slot++ {
		ln, err := net.FileListener(g.File(slot))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if got := ln.Addr().(*net.TCPAddr).Port; got != g.Addr().Port {
			t.Fatalf("slot %d listens on port %d, want %d", slot, got, g.Addr().Port)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
				accepted <- slot
			}
		}()
	}
	seen := map[int]bool{}
	for range 60 {
		c, err := net.DialTimeout("tcp", g.Addr().String(), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		select {
		case s := <-accepted:
			seen[s] = true
		case <-time.After(5 * time.Second):
			t.Fatal("connection not accepted")
		}
	}
	if len(seen) < 2 {
		t.Errorf("60 connections reached only slots %v; want the kernel to spread them", seen)
	}
}

func TestBindRefusesATakenAddress(t *testing.T) {
	for _, reuse := range []bool{false, true} {
		var holder net.Listener
		var err error
		if reuse {
			// Even another SO_REUSEPORT user must not be joined silently.
			holder, err = Listen(context.Background(), "127.0.0.1:0")
		} else {
			holder, err = net.Listen("tcp", "127.0.0.1:0")
		}
		if err != nil {
			t.Fatal(err)
		}
		_, err = Bind(context.Background(), holder.Addr().String(), 2)
		holder.Close()
		if !errors.Is(err, ErrAddrInUse) {
			t.Errorf("reuse=%v: Bind on a taken address: %v; want ErrAddrInUse", reuse, err)
		}
	}
}

func TestRemoveClosesOnlyThatSlot(t *testing.T) {
	g, err := Bind(context.Background(), "127.0.0.1:0", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.Remove(2); err != nil {
		t.Fatal(err)
	}
	if g.File(2) != nil {
		t.Error("slot 2 still has a socket after Remove")
	}
	if g.File(1) == nil {
		t.Error("Remove(2) closed slot 1")
	}
	f, err := g.Add(context.Background(), 2)
	if err != nil || f == nil {
		t.Fatalf("re-adding slot 2: %v", err)
	}
}
