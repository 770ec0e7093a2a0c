package messenger_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ct "github.com/broodhq/brood/internal/clustertest"
)

// Tests of the direct channels between the workers and the agent, with
// real processes.

func membersOf(t *testing.T, c *ct.Cluster) members {
	t.Helper()
	cl := ct.Client(30 * time.Second)
	defer cl.CloseIdleConnections()
	r := get(t, cl, c, q("op", "call", "action", "members"))
	var mem members
	if r.Err != "" || json.Unmarshal(r.Reply, &mem) != nil {
		t.Fatalf("members: %+v", r)
	}
	return mem
}

func callLoopOn(t *testing.T, cl *http.Client, c *ct.Cluster, d time.Duration, conc int) loopStats {
	t.Helper()
	r := get(t, cl, c, q("op", "callloop", "ms", d.Milliseconds(), "c", conc))
	var st loopStats
	if r.Err != "" || json.Unmarshal(r.Reply, &st) != nil {
		t.Fatalf("callloop: %+v", r)
	}
	return st
}

// readSeq3 reads "agent n sender" lines: by sender, by agent, the numbers.
func readSeq3(t *testing.T, path string) map[int]map[int][]int {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[int]map[int][]int{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		var agent, n, sender int
		if _, err := fmt.Sscan(s.Text(), &agent, &n, &sender); err != nil {
			continue // a line cut short by SIGKILL
		}
		if out[sender] == nil {
			out[sender] = map[int][]int{}
		}
		out[sender][agent] = append(out[sender][agent], n)
	}
	return out
}

// The agent is SIGKILLed while three workers each stream messages to it and
// keep calls to it in flight: every message reaches an agent (the dead
// one, or the next, which the senders held them for), each agent sees each
// sender's messages in order, and every call ends, answered or with
// ErrTargetGone, well before its deadline.
func TestDirectAgentKilledMidStreamFromThreeWorkers(t *testing.T) {
	seqFile := filepath.Join(t.TempDir(), "seq")
	slowEnv, slow := agentSlowStart(t)
	c := start(t, "BROOD_WORKERS=3", "BROOD_TEST_SEQ_FILE="+seqFile, slowEnv)
	var mem members
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if mem = membersOf(t, c); len(mem.Apps) == 3 || time.Now().After(deadline) {
			break
		}
	}
	if len(mem.Apps) != 3 {
		t.Fatalf("members %+v; want 3 workers", mem)
	}
	const n = 20000
	var wg sync.WaitGroup
	stats := make([]loopStats, 3)
	for i, pid := range mem.Apps {
		cl := pinned(t, c, pid)
		get(t, cl, c, q("op", "seqsend", "route", "agent", "n", n, "pace", 10))
		wg.Go(func() { stats[i] = callLoopOn(t, cl, c, 6*time.Second, 2) })
	}
	killAgentAfter(t, c, seqFile, 6000, mem.Agent, slow)
	wg.Wait()
	for deadline := time.Now().Add(30 * time.Second); len(records(c, func(r rec) bool { return r.Msg == "seqsend done" })) < 3; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the senders did not finish")
		}
	}
	total := loopStats{}
	for i, st := range stats {
		if st.Other != 0 || st.MaxMS > 10000 || st.OK == 0 {
			t.Errorf("worker %d calls: %+v; want every call answered or ErrTargetGone, within 10 s", mem.Apps[i], st)
		}
		total.OK += st.OK
		total.Gone += st.Gone
	}
	var seq map[int]map[int][]int
	complete := func() bool {
		for _, pid := range mem.Apps {
			seen := map[int]bool{}
			for _, run := range seq[pid] {
				for _, v := range run {
					seen[v] = true
				}
			}
			if len(seen) < n {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if seq = readSeq3(t, seqFile); complete() {
			break
		}
	}
	for _, sender := range mem.Apps {
		seen := map[int]bool{}
		for agent, run := range seq[sender] {
			for i := 1; i < len(run); i++ {
				if run[i] != run[i-1]+1 {
					t.Errorf("agent %d saw %d after %d from worker %d: a gap or disorder", agent, run[i], run[i-1], sender)
					break
				}
			}
			for _, v := range run {
				seen[v] = true
			}
		}
		for v := 1; v <= n; v++ {
			if !seen[v] {
				t.Errorf("message %d from worker %d reached no agent", v, sender)
				break
			}
		}
		if len(seq[sender]) != 2 {
			t.Errorf("worker %d's messages were handled by agents %v; want the old one and the new one", sender, slices.Collect(mapsKeys(seq[sender])))
		}
	}
	t.Logf("calls: %d answered, %d ErrTargetGone", total.OK, total.Gone)
}

func mapsKeys(m map[int][]int) func(func(int) bool) {
	return func(yield func(int) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Twenty reloads, each replacing the agent and every worker, under a steady
// load of requests that each make a CallAgent: not one fails.
func TestDirectTwentyReloadsUnderCallAgentLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("20 reloads")
	}
	c := start(t, "BROOD_SHUTDOWN_TIMEOUT=10s")
	stop := make(chan struct{})
	var mu sync.Mutex
	var ok, failed int
	var errs []string
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			cl := ct.Client(30 * time.Second)
			defer cl.CloseIdleConnections()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				data := fmt.Sprint("r", i)
				st, body, err := ct.Get(cl, c.URL("/do?"+q("op", "call", "action", "echo", "data", data)))
				var r result
				good := err == nil && st == 200 && json.Unmarshal([]byte(body), &r) == nil && r.Err == "" && string(r.Reply) == `"`+data+`"`
				mu.Lock()
				if good {
					ok++
				} else {
					failed++
					if len(errs) < 5 {
						errs = append(errs, fmt.Sprintf("%d %q %v", st, body, err))
					}
				}
				mu.Unlock()
			}
		})
	}
	after := 0
	deadline := time.Now().Add(4 * time.Minute)
	for i := range 20 {
		c.Signal(syscall.SIGHUP)
		_, at, err := c.WaitLog(time.Until(deadline), after, ct.Msg("reload complete"))
		if err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("reload %d: %v", i+1, err)
		}
		after = at + 1
	}
	close(stop)
	wg.Wait()
	if failed != 0 || ok < 100 {
		t.Errorf("%d requests answered, %d failed (first: %v); want none failed", ok, failed, errs)
	}
	t.Logf("20 reloads: %d requests, each a CallAgent, none failed", ok)
}

// A handler gets its caller's deadline, and its context ends when the
// caller gives up.
func TestHandlerContextFollowsTheCaller(t *testing.T) {
	c := start(t)
	cl := ct.Client(30 * time.Second)
	r := get(t, cl, c, q("op", "call", "action", "deadline", "ms", 5000))
	var left int
	if r.Err != "" || json.Unmarshal(r.Reply, &left) != nil || left <= 3000 || left > 5000 {
		t.Errorf("the agent's handler saw %s ms left (err %q); want the caller's deadline, about 5000 ms away", r.Reply, r.Err)
	}
	at := c.Lines()
	t0 := time.Now()
	r = get(t, cl, c, q("op", "call", "action", "slow", "data", "", "json", "60000", "ms", 300))
	if !slices.Contains(r.Is, "deadline") {
		t.Errorf("slow call with a 300 ms deadline: %+v; want its deadline error", r)
	}
	l, _, err := c.WaitLog(10*time.Second, at, ct.Msg("slow call context ended"))
	if err != nil {
		t.Fatalf("the handler's context did not end when its caller gave up: %v", err)
	}
	if l["caller_gone"] != true || time.Since(t0) > 5*time.Second {
		t.Errorf("handler context ended with %v after %s; want ErrCallerGone soon after the caller's deadline", l["cause"], time.Since(t0))
	}
}

// A handler that ignores its context does not stall a reload: once its
// caller gave up, the stopping agent waits messenger.OrphanWait for it, not
// the shutdown timeout, and says so.
func TestStuckHandlerDoesNotStallReload(t *testing.T) {
	c := start(t, "BROOD_SHUTDOWN_TIMEOUT=30s")
	cl := ct.Client(30 * time.Second)
	r := get(t, cl, c, q("op", "call", "action", "stuck", "ms", 300))
	if !slices.Contains(r.Is, "deadline") {
		t.Fatalf("stuck call: %+v; want its deadline error", r)
	}
	at := c.Lines()
	t0 := time.Now()
	c.Signal(syscall.SIGHUP)
	if _, _, err := c.WaitLog(25*time.Second, at, ct.Msg("reload complete")); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if d := time.Since(t0); d > 15*time.Second {
		t.Errorf("reload took %s with a stuck handler; want well under the 30 s shutdown timeout", d)
	}
	if _, _, err := c.WaitLog(time.Second, at, ct.Msg("not waiting for call handlers whose callers gave up or are gone: they ignored their context")); err != nil {
		t.Errorf("the stopping agent did not say it left a stuck handler: %v", err)
	}
	r = get(t, cl, c, q("op", "call", "action", "echo", "data", "after"))
	if r.Err != "" {
		t.Errorf("call after the reload: %+v", r)
	}
}

// OnMembers fires in every process when a worker is replaced, with the
// new membership.
func TestOnMembersFiresOnChange(t *testing.T) {
	c := start(t)
	mem := clusterPIDs(t, c)
	victim := mem.Apps[0]
	at := c.Lines()
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.WaitLog(20*time.Second, at, ct.Msg("replacement ready")); err != nil {
		t.Fatal(err)
	}
	// The agent hears of the new worker just after the master logs it.
	var after members
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		after = membersOf(t, c)
		if len(after.Apps) == 2 && !slices.Contains(after.Apps, victim) || time.Now().After(deadline) {
			break
		}
	}
	var newPID int
	for _, p := range after.Apps {
		if p != mem.Apps[1] {
			newPID = p
		}
	}
	for _, pid := range []int{mem.Agent, mem.Apps[1], newPID} {
		_, _, err := c.WaitLog(10*time.Second, at, func(l map[string]any) bool {
			apps, _ := l["apps"].([]any)
			return l["msg"] == "members" && l["pid"] == float64(pid) && l["agent"] == float64(mem.Agent) &&
				len(apps) == 2 && slices.Contains(apps, any(float64(newPID)))
		})
		if err != nil {
			t.Errorf("pid %d did not see the membership with the new worker %d: %v", pid, newPID, err)
		}
	}
}

// A worker SIGKILLed with calls to the agent in flight, and replies on the
// way to it, costs the agent nothing: it stays up, logs no error, and
// answers the other worker at once.
func TestDirectWorkerKilledWithCallsInFlight(t *testing.T) {
	c := start(t)
	mem := clusterPIDs(t, c)
	victim, other := mem.Apps[0], mem.Apps[1]
	cl := pinned(t, c, victim)
	go func() {
		// Ends with an error when the worker dies.
		_, _, _ = ct.Get(cl, c.URL("/do?"+q("op", "callloop", "ms", 5000, "c", 8)))
	}()
	if _, _, err := c.WaitLog(10*time.Second, 0, func(l map[string]any) bool { return true }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	at := c.Lines()
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.WaitLog(20*time.Second, at, ct.Msg("replacement ready")); err != nil {
		t.Fatal(err)
	}
	st := callLoopOn(t, pinned(t, c, other), c, time.Second, 2)
	if st.Other != 0 || st.Gone != 0 || st.OK == 0 {
		t.Errorf("the other worker's calls after the kill: %+v; want all answered", st)
	}
	if after := membersOf(t, c); after.Agent != mem.Agent {
		t.Errorf("agent %d after the kill; want the same %d", after.Agent, mem.Agent)
	}
	if _, _, err := c.WaitLog(time.Second, at, func(l map[string]any) bool {
		return l["pid"] == float64(mem.Agent) && (l["level"] == "ERROR" || l["level"] == "WARN")
	}); err == nil {
		t.Errorf("the agent logged a warning or an error for a worker that died:\n%s", c.Messages())
	}
}

// An agent whose dispatcher deadlocks while messages wait is killed after
// the hang timeout; the message queued behind the stuck one reaches the
// next agent, and calls work again.
func TestDeadlockedAgentIsReplaced(t *testing.T) {
	hangFile := filepath.Join(t.TempDir(), "hung")
	c := start(t, "BROOD_HANG_TIMEOUT=2s", "BROOD_TEST_HANG_FILE="+hangFile)
	mem := clusterPIDs(t, c)
	cl := pinned(t, c, mem.Apps[0])
	at := c.Lines()
	get(t, cl, c, q("op", "send", "route", "agent", "action", "hang", "data", "x"))
	get(t, cl, c, q("op", "send", "route", "agent", "action", "t", "data", "behind-the-hang"))
	if _, _, err := c.WaitLog(20*time.Second, at, ct.Msg("agent hung: its message handlers made no progress while messages waited; killing it, the next agent gets what was held")); err != nil {
		t.Fatalf("deadlocked agent not detected: %v", err)
	}
	rs := waitRecords(t, c, 1, got("behind-the-hang"))
	if len(rs) != 1 || rs[0].PID == mem.Agent {
		t.Errorf("the message behind the stuck one: %+v; want it handled once, by the new agent", rs)
	}
	r := get(t, cl, c, q("op", "call", "action", "whoami"))
	var pid int
	if r.Err != "" || json.Unmarshal(r.Reply, &pid) != nil || pid == mem.Agent {
		t.Errorf("call after the replacement: %+v; want an answer from the new agent", r)
	}
}

// A long call is not a hang: calls run in goroutines of their own.
func TestLongCallIsNotAHang(t *testing.T) {
	c := start(t, "BROOD_HANG_TIMEOUT=1s")
	cl := ct.Client(30 * time.Second)
	r := get(t, cl, c, q("op", "call", "action", "slow", "data", "", "json", "3000", "ms", 10000))
	if r.Err != "" {
		t.Errorf("a 3 s call with a 1 s hang timeout: %+v; want it answered", r)
	}
	if strings.Contains(c.Output(), "agent hung") {
		t.Error("a long call was taken for a hang")
	}
}

// A call queued behind an agent's deadlocked On function never started:
// the hung agent hands it back before it is killed, and the new agent
// answers it. A call whose handler was already running may have run, and
// still fails with ErrTargetGone.
// The same holds in relay mode, where the master holds the calls.
func TestHungAgentHandsOverQueuedCalls(t *testing.T) {
	t.Run("direct", func(t *testing.T) { testHungAgentHandsOver(t) })
	t.Run("relay", func(t *testing.T) { testHungAgentHandsOver(t, "BROOD_MESSENGER_RELAY=1") })
}

func testHungAgentHandsOver(t *testing.T, env ...string) {
	hangFile := filepath.Join(t.TempDir(), "hung")
	c := start(t, append(env, "BROOD_HANG_TIMEOUT=2s", "BROOD_TEST_HANG_FILE="+hangFile)...)
	mem := clusterPIDs(t, c)
	w := mem.Apps[0]
	// Requests that complete, so that the worker whose two requests wait
	// on the agent is not taken for hung itself.
	stop := make(chan struct{})
	defer close(stop)
	for _, pid := range mem.Apps {
		go func(cl *http.Client) {
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				_, _, _ = ct.Get(cl, c.URL("/do?op=none"))
			}
		}(pinned(t, c, pid))
	}
	at := c.Lines()
	running := getAsync(pinned(t, c, w), c, q("op", "call", "action", "slow", "json", "60000", "ms", 30000))
	waitSlowCall(t, c, at, mem.Agent)
	get(t, pinned(t, c, w), c, q("op", "send", "route", "agent", "action", "hang", "data", "x"))
	if _, _, err := c.WaitLog(10*time.Second, at, ct.Msg("hanging")); err != nil {
		t.Fatal(err)
	}
	queued := getAsync(pinned(t, c, w), c, q("op", "call", "action", "whoami", "ms", 30000))
	if _, _, err := c.WaitLog(20*time.Second, at, ct.Msg("agent hung: its message handlers made no progress while messages waited; killing it, the next agent gets what was held")); err != nil {
		t.Fatalf("deadlocked agent not detected: %v", err)
	}
	r := <-queued
	var pid int
	if r.Err != "" || json.Unmarshal(r.Reply, &pid) != nil || pid == mem.Agent || pid == 0 {
		t.Errorf("the call queued behind the hang: %+v; want the new agent's answer", r)
	}
	r = <-running
	if !slices.Contains(r.Is, "gone") {
		t.Errorf("the call running on the hung agent: %+v; want ErrTargetGone", r)
	}
	if after := membersOf(t, c); after.Agent == mem.Agent || after.Agent == 0 {
		t.Errorf("agent %d after the hang; want a new one", after.Agent)
	}
	// Killed at its confirmation, not at the end of the grace.
	if _, _, err := c.WaitLog(time.Second, at, func(l map[string]any) bool {
		n, _ := l["calls"].(float64)
		return l["msg"] == "the hung agent handed back the calls it had not started" && n >= 1
	}); err != nil {
		t.Errorf("the master did not hear that calls were handed back: %v", err)
	}
	if strings.Contains(c.Output(), "did not hand back its queued calls in time") {
		t.Error("the hung agent was killed at the end of the grace, not at its confirmation")
	}
}

// getAsync is get on its own goroutine, for a request that waits.
func getAsync(cl *http.Client, c *ct.Cluster, query string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		var r result
		st, body, err := ct.Get(cl, c.URL("/do?"+query))
		if err == nil && st != 200 {
			err = fmt.Errorf("status %d", st)
		}
		if err == nil {
			err = json.Unmarshal([]byte(body), &r)
		}
		if err != nil {
			r = result{Err: fmt.Sprintf("GET /do?%s: %q: %v", query, body, err)}
		}
		ch <- r
	}()
	return ch
}
