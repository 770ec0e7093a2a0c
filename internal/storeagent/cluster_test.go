package storeagent_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ct "github.com/broodhq/brood/internal/clustertest"
)

// These tests run real clusters of the application in main_test.go: a
// master, the agent holding the store, and workers calling it.

func start(t *testing.T, workers int, env ...string) *ct.Cluster {
	t.Helper()
	c := ct.Start(t, "store", append([]string{"BROOD_ADDR=127.0.0.1:0", fmt.Sprint("BROOD_WORKERS=", workers)}, env...)...)
	c.WaitReady(60 * time.Second)
	return c
}

func call(t *testing.T, cl *http.Client, c *ct.Cluster, path string, kv ...string) reply {
	t.Helper()
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	st, body, err := ct.Get(cl, c.URL(path+"?"+v.Encode()))
	if err != nil || st != 200 {
		t.Fatalf("GET %s?%s = %d %q, %v", path, v.Encode(), st, body, err)
	}
	var r reply
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("GET %s: %q: %v", path, body, err)
	}
	return r
}

// clients returns one keep-alive client pinned to each worker (the kernel
// spreads new connections by hash, so each dials until it lands on a worker
// not yet taken), keyed by worker pid.
func clients(t *testing.T, c *ct.Cluster, workers int) map[int]*http.Client {
	t.Helper()
	out := map[int]*http.Client{}
	for range 500 {
		cl := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
		pid := call(t, cl, c, "/pid").PID
		if _, dup := out[pid]; dup {
			cl.CloseIdleConnections()
			continue
		}
		out[pid] = cl
		if len(out) == workers {
			return out
		}
	}
	t.Fatalf("reached %d of %d workers", len(out), workers)
	return nil
}

func wantValue(t *testing.T, r reply, want string) {
	t.Helper()
	if r.Err != "" || !r.Found || r.Value != want {
		t.Fatalf("worker %d read %q (found %v, err %q); want %q", r.PID, r.Value, r.Found, r.Err, want)
	}
}

func TestValueSetOnOneWorkerIsReadByEveryOther(t *testing.T) {
	c := start(t, 3)
	cls := clients(t, c, 3)
	for _, cl := range cls {
		// Written from the hooks, before the cluster was ready.
		if r := call(t, cl, c, "/get", "k", "agent-hook"); !r.Found || r.Value != fmt.Sprint(r.Agent) {
			t.Fatalf("agent-hook = %+v; want the agent's pid, written in its WithAgent hook", r)
		}
		wantValue(t, call(t, cl, c, "/get", "k", "worker-hooks"), "3")
		break
	}
	var writer int
	for pid, cl := range cls {
		writer = pid
		if r := call(t, cl, c, "/set", "k", "greeting", "v", "hello from one worker"); r.Err != "" {
			t.Fatalf("set: %s", r.Err)
		}
		break
	}
	for pid, cl := range cls {
		if pid != writer {
			wantValue(t, call(t, cl, c, "/get", "k", "greeting"), "hello from one worker")
		}
	}
	// A TTL counts for every worker.
	for _, cl := range cls {
		call(t, cl, c, "/set", "k", "short", "v", "x", "ttl", "100")
		break
	}
	time.Sleep(500 * time.Millisecond)
	for _, cl := range cls {
		if r := call(t, cl, c, "/get", "k", "short"); r.Found || r.Err != "" {
			t.Fatalf("worker %d read an expired key: %+v", r.PID, r)
		}
	}
}

// TestConcurrentIncrFromThreeWorkersIsExact: 20,000 Incr, a third from each
// of three workers, 16 at a time in each, end at exactly 20,000.
func TestConcurrentIncrFromThreeWorkersIsExact(t *testing.T) {
	c := start(t, 3)
	cls := clients(t, c, 3)
	const total = 20000
	shares := []int{6667, 6667, 6666}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		ok      int
		errs    []string
		workers []int
	)
	i := 0
	for pid, cl := range cls {
		n := shares[i]
		i++
		workers = append(workers, pid)
		wg.Go(func() {
			r := call(t, cl, c, "/incr", "k", "hits", "n", fmt.Sprint(n), "par", "16")
			mu.Lock()
			defer mu.Unlock()
			ok += r.OK
			if r.Fail > 0 {
				errs = append(errs, fmt.Sprintf("worker %d: %d failed: %s", r.PID, r.Fail, r.Err))
			}
		})
	}
	start := time.Now()
	wg.Wait()
	t.Logf("%d Incr from workers %v in %s", total, workers, time.Since(start))
	if len(errs) > 0 || ok != total {
		t.Fatalf("%d Incr succeeded, want %d: %v", ok, total, errs)
	}
	for _, cl := range cls {
		wantValue(t, call(t, cl, c, "/get", "k", "hits"), fmt.Sprint(total))
	}
}

// TestDataSurvivesAgentKillAndReload: what was acknowledged is there after
// the agent is SIGKILLed and after a rolling reload; calls made during the
// reload all succeed and are all counted.
func TestDataSurvivesAgentKillAndReload(t *testing.T) {
	c := start(t, 2)
	cl := ct.Client(60 * time.Second)
	call(t, cl, c, "/set", "k", "session", "v", "alice")
	if r := call(t, cl, c, "/incr", "k", "n", "n", "500", "par", "8"); r.OK != 500 {
		t.Fatalf("incr before the kill: %+v", r)
	}
	agent := call(t, cl, c, "/pid").Agent
	if agent == 0 {
		t.Fatal("no agent pid")
	}
	if err := syscall.Kill(agent, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Calls made while the agent restarts wait for the new one.
	wantValue(t, call(t, cl, c, "/get", "k", "session"), "alice")
	wantValue(t, call(t, cl, c, "/get", "k", "n"), "500")
	if now := call(t, cl, c, "/pid").Agent; now == agent {
		t.Fatalf("agent pid still %d after SIGKILL", agent)
	}

	// A rolling reload while a worker keeps counting until it is over.
	before := call(t, cl, c, "/pid").Agent
	after := c.Lines()
	stop := filepath.Join(t.TempDir(), "stop")
	done := make(chan reply, 1)
	go func() { done <- call(t, ct.Client(90*time.Second), c, "/incr", "k", "n", "until", stop, "par", "4") }()
	time.Sleep(300 * time.Millisecond)
	c.Signal(syscall.SIGHUP)
	if _, _, err := c.WaitLog(50*time.Second, after, ct.Msg("reload complete")); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		t.Fatalf("the counting ended (%+v) before the reload did; the test proves nothing", r)
	default:
	}
	os.WriteFile(stop, nil, 0o600)
	r := <-done
	if r.Fail != 0 || r.OK == 0 {
		t.Fatalf("Incr during the reload: %d ok, %d failed (%s); want none failed", r.OK, r.Fail, r.Err)
	}
	wantValue(t, call(t, cl, c, "/get", "k", "n"), fmt.Sprint(500+r.OK))
	wantValue(t, call(t, cl, c, "/get", "k", "session"), "alice")
	if now := call(t, cl, c, "/pid").Agent; now == before || now == 0 {
		t.Fatalf("agent pid %d after the reload; want a new agent", now)
	}
	t.Logf("%d Incr during a rolling reload, none failed", r.OK)
}

// TestDataSurvivesMasterKill: SIGKILL of the master (its children follow
// it), then a fresh start on the same data directory.
func TestDataSurvivesMasterKill(t *testing.T) {
	dir := t.TempDir()
	c := start(t, 2, "BROOD_DATA_DIR="+dir)
	cl := ct.Client(60 * time.Second)
	call(t, cl, c, "/set", "k", "session", "v", "bob")
	call(t, cl, c, "/incr", "k", "n", "n", "100", "par", "4")
	children := c.Children()
	c.Signal(syscall.SIGKILL)
	c.Wait(10 * time.Second)
	waitGone(t, children)

	c2 := start(t, 2, "BROOD_DATA_DIR="+dir)
	wantValue(t, call(t, cl, c2, "/get", "k", "session"), "bob")
	wantValue(t, call(t, cl, c2, "/get", "k", "n"), "100")
}

func waitGone(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for ct.Alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("pid %d still alive 10s after its master died", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func TestSecondClusterOnTheSameDataDirRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	start(t, 1, "BROOD_DATA_DIR="+dir)
	c2 := ct.Start(t, "store", "BROOD_ADDR=127.0.0.1:0", "BROOD_WORKERS=1", "BROOD_DATA_DIR="+dir)
	if err, exited := c2.Wait(30 * time.Second); !exited || err == nil {
		t.Fatalf("second master: exited=%v err=%v; want a non-zero exit", exited, err)
	}
	if out := c2.Messages(); !strings.Contains(out, dir) || !strings.Contains(out, "in use by another brood cluster") {
		t.Fatalf("second master's log does not say the data directory %s is in use:\n%s", dir, out)
	}
}

func TestForeignDatabaseFileRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "store.db")
	os.WriteFile(path, []byte(strings.Repeat("not a database ", 1000)), 0o600)
	c := ct.Start(t, "store", "BROOD_ADDR=127.0.0.1:0", "BROOD_WORKERS=1", "BROOD_DATA_DIR="+dir)
	if err, exited := c.Wait(30 * time.Second); !exited || err == nil {
		t.Fatalf("master: exited=%v err=%v; want a non-zero exit", exited, err)
	}
	out := c.Messages()
	if !strings.Contains(out, path) || !strings.Contains(out, "move the file away") {
		t.Fatalf("log does not name %s and what to do:\n%s", path, out)
	}
	if n := strings.Count(out, "agent database"); n != 0 {
		t.Fatalf("the agent opened a database %d times", n)
	}
	if b, _ := os.ReadFile(path); !strings.HasPrefix(string(b), "not a database") {
		t.Fatal("the foreign file was changed")
	}
}

// TestUnwritableDefaultDirKeepsTheStoreInMemory: with no data directory
// set and a default that cannot be created, the agent says so and serves
// the store from memory.
func TestUnwritableDefaultDirKeepsTheStoreInMemory(t *testing.T) {
	c := start(t, 2, "BROOD_DATA_DIR=", "XDG_STATE_HOME=/proc/brood-cannot-write-here")
	if !strings.Contains(c.Messages(), "keeping the store in memory") {
		t.Fatalf("no warning that the store is in memory:\n%s", c.Messages())
	}
	cl := ct.Client(60 * time.Second)
	call(t, cl, c, "/set", "k", "k", "v", "v")
	wantValue(t, call(t, cl, c, "/get", "k", "k"), "v")
}

// TestAcknowledgedIncrSurvivesAgentKill: workers count while the agent is
// SIGKILLed twice; every Incr that was acknowledged is in the final count,
// and only those that failed (they may or may not have run) are in doubt.
func TestAcknowledgedIncrSurvivesAgentKill(t *testing.T) {
	c := start(t, 2)
	cl := ct.Client(90 * time.Second)
	stop := filepath.Join(t.TempDir(), "stop")
	done := make(chan reply, 2)
	for range 2 {
		go func() { done <- call(t, ct.Client(90*time.Second), c, "/incr", "k", "n", "until", stop, "par", "8") }()
	}
	for range 2 {
		time.Sleep(500 * time.Millisecond)
		agent := call(t, cl, c, "/pid").Agent
		if agent == 0 {
			t.Fatal("no agent")
		}
		syscall.Kill(agent, syscall.SIGKILL)
		deadline := time.Now().Add(30 * time.Second)
		for now := call(t, cl, c, "/pid").Agent; now == agent || now == 0; now = call(t, cl, c, "/pid").Agent {
			if time.Now().After(deadline) {
				t.Fatal("no new agent 30s after SIGKILL")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	time.Sleep(300 * time.Millisecond)
	os.WriteFile(stop, nil, 0o600)
	var ok, failed int
	for range 2 {
		r := <-done
		ok, failed = ok+r.OK, failed+r.Fail
		if r.Fail > 0 && !strings.Contains(r.Err, "may or may not have run") {
			t.Errorf("an Incr failed for another reason than the agent's death: %s", r.Err)
		}
	}
	r := call(t, cl, c, "/get", "k", "n")
	var n int
	fmt.Sscan(r.Value, &n)
	t.Logf("%d Incr acknowledged, %d failed with the agent's death; count %d", ok, failed, n)
	if n < ok || n > ok+failed {
		t.Fatalf("count %d after %d acknowledged and %d failed Incr; want from %d to %d", n, ok, failed, ok, ok+failed)
	}
}
