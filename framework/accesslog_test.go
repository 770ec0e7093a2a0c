package framework

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	ct "github.com/broodhq/brood/internal/clustertest"
)

// The workers' JSON logger batches access lines for a few milliseconds
// (middleware.JSONHandler); a graceful stop must still leave one line per
// request answered, none lost and none doubled.
func TestAccessLinesAllWrittenByGracefulStop(t *testing.T) {
	c := startBasic(t)
	client := ct.Client(5 * time.Second)
	const n = 300
	for i := range n {
		if st, _, err := ct.Get(client, c.URL(fmt.Sprintf("/?i=%d", i))); err != nil || st != 200 {
			t.Fatalf("request %d: %d %v", i, st, err)
		}
	}
	client.CloseIdleConnections()
	c.Signal(syscall.SIGTERM)
	if _, exited := c.Wait(20 * time.Second); !exited {
		t.Fatal("master did not exit after SIGTERM")
	}
	// WaitLog visits every record; the matcher counts and never matches.
	seen := map[string]int{}
	c.WaitLog(time.Second, 0, func(l map[string]any) bool {
		if l["msg"] == "request" {
			p, _ := l["path"].(string)
			seen[p]++
		}
		return false
	})
	for i := range n {
		if p := fmt.Sprintf("/?i=%d", i); seen[p] != 1 {
			t.Errorf("%s logged %d times, want once", p, seen[p])
		}
	}
}
