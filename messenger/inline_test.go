package messenger_test

import (
	"encoding/json"
	"testing"
	"time"

	ct "github.com/broodhq/brood/internal/clustertest"
)

// The agent runs a direct channel's calls on the channel's reader (see
// "Where a handler runs" in the package documentation). These tests hold
// it to what that must not cost.

// A handler that calls its caller back before answering waits for a reply
// that comes over the very channel whose reader runs it: the reader hands
// the channel on, and the call is answered, not stuck until its deadline.
func TestAgentHandlerCallsItsCallerBack(t *testing.T) {
	c := start(t, "BROOD_WORKERS=2")
	cl := ct.Client(30 * time.Second)
	defer cl.CloseIdleConnections()
	for i := range 20 {
		r := get(t, cl, c, q("op", "call", "action", "callback", "ms", 5000))
		var pid int
		if r.Err != "" || json.Unmarshal(r.Reply, &pid) != nil {
			t.Fatalf("call %d: %+v", i, r)
		}
		if pid != r.PID {
			t.Fatalf("call %d: the callback reached pid %d, the caller is %d", i, pid, r.PID)
		}
	}
}

// A slow handler (2 s) does not hold up the next call from the same worker:
// the quick call is answered while the slow one still runs.
func TestSlowAgentHandlerDoesNotHoldTheChannel(t *testing.T) {
	c := start(t, "BROOD_WORKERS=1")
	cl := ct.Client(30 * time.Second)
	defer cl.CloseIdleConnections()
	r := get(t, cl, c, q("op", "slowthenecho"))
	var ms int64
	if r.Err != "" || json.Unmarshal(r.Reply, &ms) != nil {
		t.Fatalf("slowthenecho: %+v", r)
	}
	// Generous: the handoff is about a millisecond; the slow call takes
	// 2000 ms, which is what the quick one would wait without it.
	if ms > 1000 {
		t.Fatalf("a quick call behind a slow one took %d ms: the slow handler held the channel", ms)
	}
}
