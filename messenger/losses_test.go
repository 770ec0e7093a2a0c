package messenger_test

import (
	"fmt"
	"testing"
	"time"

	ct "github.com/broodhq/brood/internal/clustertest"
)

// Messages the master cannot deliver are reported promptly, each batch
// under its own reason: 13 sends to a pid that is not in the cluster are
// one line at once and one with the other 12 about a second later, not held
// until some later loss and then attributed to that loss's reason.
func TestLostMessagesReportedPromptlyWithTheirReason(t *testing.T) {
	c := start(t)
	cl := ct.Client(10 * time.Second)
	const gone = 999999 // beyond pid_max's default: no such process
	at := c.Lines()
	for range 13 {
		if r := get(t, cl, c, q("op", "send", "route", "pid", "pid", gone, "action", "lost")); r.Err != "" {
			t.Fatalf("send: %+v", r)
		}
	}
	reason := fmt.Sprintf("no process %d in the cluster", gone)
	var counts []float64
	deadline := time.Now().Add(5 * time.Second)
	for sum := 0.0; sum < 13; {
		rec, next, err := c.WaitLog(time.Until(deadline), at, ct.Msg("messages not delivered"))
		if err != nil {
			t.Fatalf("after %v of 13 losses reported (%v): %v", sum, counts, err)
		}
		at = next + 1
		if rec["reason"] != reason || rec["action"] != "lost" {
			t.Fatalf("loss reported with reason %q action %q, want %q \"lost\"", rec["reason"], rec["action"], reason)
		}
		n, _ := rec["count"].(float64)
		counts = append(counts, n)
		sum += n
	}
	if len(counts) > 2 || counts[0] != 1 {
		t.Errorf("the 13 losses were reported as counts %v; want 1 at once, then the rest together", counts)
	}
}
