package worker

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// gated returns a gate in front of a loopback listener whose connection
// count and business the test sets.
func gated(t *testing.T) (*gate, net.Listener, *atomic.Int64, *atomic.Bool) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int64
	var busy atomic.Bool
	g := newGate(conns.Load, busy.Load)
	gl, err := g.listener(ln)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gl.Close() })
	return g, gl, &conns, &busy
}

// acceptAfter dials ln and returns how long its Accept took to take the
// connection.
func acceptAfter(t *testing.T, ln net.Listener) time.Duration {
	t.Helper()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	return time.Since(start)
}

func TestGateAcceptsUnderTheShare(t *testing.T) {
	g, ln, conns, _ := gated(t)
	g.setShare(5)
	conns.Store(4)
	if d := acceptAfter(t, ln); d > time.Second {
		t.Errorf("under its share the worker took %s to accept", d)
	}
}

// At its share, a worker leaves a connection to the others, but takes it
// once it has waited: at once when idle, after overflowBusy when busy.
func TestGateTakesWhatWaitsOnceFull(t *testing.T) {
	_, ln, conns, busy := gated(t)
	conns.Store(1) // the share before the master's first word
	if d := acceptAfter(t, ln); d > time.Second {
		t.Errorf("idle at its share, the worker took %s to take a waiting connection", d)
	}
	busy.Store(true)
	if d := acceptAfter(t, ln); d < overflowBusy || d > 2*time.Second {
		t.Errorf("busy at its share, the worker took a waiting connection after %s; want at least %s", d, overflowBusy)
	}
}

// Over its share with nothing queued, Accept waits at the gate, and
// returns net.ErrClosed once the listener closes (net/http's Serve then
// returns).
func TestGateWaitEndsAtClose(t *testing.T) {
	g, ln, conns, _ := gated(t)
	conns.Store(3)
	g.setShare(2)
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-accepted:
		t.Fatalf("Accept returned (%v) with nothing queued", err)
	default:
	}
	ln.Close()
	select {
	case err := <-accepted:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v; want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept still waits at the gate after Close")
	}
}
