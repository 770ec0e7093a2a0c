package storeagent_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ct "github.com/broodhq/brood/internal/clustertest"
	"github.com/broodhq/brood/internal/redistest"
	"github.com/broodhq/brood/store/redisstore"
)

// TestRedisBackendThroughTheAgent: with $BROOD_STORE the agent keeps the
// store in Redis, under the application's namespace, and workers reach it
// as before.
func TestRedisBackendThroughTheAgent(t *testing.T) {
	srv := redistest.Start(t)
	c := start(t, 2, "BROOD_STORE="+srv.URL(3))
	cls := clients(t, c, 2)
	var pids []int
	for pid := range cls {
		pids = append(pids, pid)
	}
	call(t, cls[pids[0]], c, "/set", "k", "greeting", "v", "hi")
	wantValue(t, call(t, cls[pids[1]], c, "/get", "k", "greeting"), "hi")
	if r := call(t, cls[pids[1]], c, "/incr", "k", "n", "n", "1000", "par", "8"); r.OK != 1000 {
		t.Fatalf("incr: %+v", r)
	}
	if !strings.Contains(c.Messages(), "store: backend from $BROOD_STORE") {
		t.Fatalf("the agent did not log its backend:\n%s", c.Messages())
	}

	// The same keys, seen from outside under the application's name.
	app := filepath.Base(c.Cmd.Path)
	s, err := redisstore.Open(srv.URL(3), app)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, ok, err := s.Get(context.Background(), "n"); err != nil || !ok || string(v) != "1000" {
		t.Fatalf("Redis holds n = %q, %v, %v under %s; want 1000", v, ok, err, redisstore.Namespace(app))
	}
}

// TestUnreachableRedisStillServes: a cluster whose Redis does not answer
// starts anyway, says so, serves what needs no store, fails store calls
// fast with store.ErrUnavailable, and uses Redis once it is there.
func TestUnreachableRedisStillServes(t *testing.T) {
	srv := redistest.Start(t)
	srv.Stop()
	c := start(t, 1, "BROOD_STORE="+srv.URL(0))
	if m := c.Messages(); !strings.Contains(m, "Redis does not answer") {
		t.Fatalf("no warning that Redis does not answer:\n%s", m)
	}
	cl := ct.Client(60 * time.Second)
	call(t, cl, c, "/pid")
	begin := time.Now()
	r := call(t, cl, c, "/get", "k", "k")
	if !strings.Contains(r.Err, "store: unavailable") || !strings.Contains(r.Err, srv.Addr) {
		t.Fatalf("Get with Redis down: %+v; want store.ErrUnavailable naming %s", r, srv.Addr)
	}
	if d := time.Since(begin); d > 5*redisstore.DefaultTimeout {
		t.Fatalf("Get with Redis down took %s", d)
	}
	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for call(t, cl, c, "/set", "k", "k", "v", "v").Err != "" {
		if time.Now().After(deadline) {
			t.Fatal("store calls still fail 10s after Redis came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	wantValue(t, call(t, cl, c, "/get", "k", "k"), "v")
}
