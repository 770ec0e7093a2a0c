//go:build unix

package reuseport

import (
	"context"
	"net"
	"os/exec"
	"testing"
	"time"
)

// TestHandingASlotToAChildKeepsItsServerWorking passes a slot's socket to a
// child process, as the master does for every worker it starts, while this
// process serves the socket the way a worker does: its listener must still
// close at once afterwards, which it does not if the exec put the shared
// socket in blocking mode (the next accept then waits in the kernel).
func TestHandingASlotToAChildKeepsItsServerWorking(t *testing.T) {
	g, err := Bind(context.Background(), "127.0.0.1:0", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ln, err := net.FileListener(g.File(1))
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
			accepted <- struct{}{}
		}
	}()
	cmd := exec.Command("true")
	cmd.ExtraFiles = append(cmd.ExtraFiles, g.File(1))
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run a child (%v)", err)
	}
	// One connection, so that the accept loop calls accept again after the
	// exec.
	c, err := net.DialTimeout("tcp", g.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	<-accepted
	time.Sleep(50 * time.Millisecond)
	closed := make(chan struct{})
	go func() { ln.Close(); close(closed) }()
	select {
	case <-closed:
		<-done
	case <-time.After(5 * time.Second):
		// Unblock the stuck accept so that the test ends.
		if c, err := net.Dial("tcp", g.Addr().String()); err == nil {
			c.Close()
		}
		<-closed
		t.Fatal("closing the listener took over 5s after the socket was handed to a child: the exec left the socket in blocking mode")
	}
}
