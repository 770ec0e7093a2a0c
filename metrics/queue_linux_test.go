//go:build linux

package metrics

import (
	"net"
	"testing"
	"time"
)

// TestAcceptQueueCountsWaitingConnections: connections nobody accepts wait
// in the queue, and the gauge sees them.
func TestAcceptQueueCountsWaitingConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if q, backlog, ok := AcceptQueue([]net.Listener{ln}); !ok || q != 0 || backlog <= 0 {
		t.Fatalf("idle: queued %d backlog %d ok %v, want 0, >0, true", q, backlog, ok)
	}
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		q, _, _ := AcceptQueue([]net.Listener{ln})
		if q == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queued %d with 3 connections waiting, want 3", q)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
