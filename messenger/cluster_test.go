package messenger_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	ct "github.com/broodhq/brood/internal/clustertest"
)

// These tests run real clusters (see main_test.go for the application):
// a master, an agent and two workers, talking over their socketpairs.

func start(t *testing.T, env ...string) *ct.Cluster {
	t.Helper()
	c := ct.Start(t, "msg", append([]string{"BROOD_ADDR=127.0.0.1:0", "BROOD_WORKERS=2"}, env...)...)
	c.WaitReady(30 * time.Second)
	return c
}

// pinned is an HTTP client whose one keep-alive connection reaches one
// chosen worker: the kernel spreads new connections by hash, so it dials
// until it lands there.
func pinned(t *testing.T, c *ct.Cluster, pid int) *http.Client {
	t.Helper()
	for range 200 {
		cl := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
		if r := get(t, cl, c, "op=none"); r.PID == pid {
			return cl
		}
		cl.CloseIdleConnections()
	}
	t.Fatalf("no connection reached worker %d", pid)
	return nil
}

func get(t *testing.T, cl *http.Client, c *ct.Cluster, query string) result {
	t.Helper()
	st, body, err := ct.Get(cl, c.URL("/do?"+query))
	if err != nil || st != 200 {
		t.Fatalf("GET /do?%s = %d %q, %v", query, st, body, err)
	}
	var r result
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("GET /do?%s: %q: %v", query, body, err)
	}
	return r
}

func q(kv ...any) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(fmt.Sprint(kv[i]), fmt.Sprint(kv[i+1]))
	}
	return v.Encode()
}

// clusterPIDs asks the agent who is in the cluster, and checks it against
// the master's children.
func clusterPIDs(t *testing.T, c *ct.Cluster) members {
	t.Helper()
	cl := ct.Client(30 * time.Second)
	defer cl.CloseIdleConnections() // nothing left to keep a replaced worker waiting
	// The master announces the membership to every process; a call reaches
	// the agent over another channel, so the agent may hear of a worker
	// that just became ready a moment after the worker can call it.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r := get(t, cl, c, q("op", "call", "action", "members"))
		var mem members
		if r.Err != "" || json.Unmarshal(r.Reply, &mem) != nil {
			t.Fatalf("members: %+v", r)
		}
		kids := c.Children()
		all := append([]int{mem.Agent}, mem.Apps...)
		slices.Sort(kids)
		slices.Sort(all)
		if slices.Equal(kids, all) && len(mem.Apps) == 2 {
			return mem
		}
		if time.Now().After(deadline) {
			t.Fatalf("AgentPID %d and AppPIDs %v; the master's children are %v", mem.Agent, mem.Apps, kids)
		}
	}
}

type rec struct {
	Msg     string `json:"msg"`
	Role    string `json:"role"`
	PID     int    `json:"pid"`
	Action  string `json:"action"`
	Data    string `json:"data"`
	From    string `json:"from"`
	FromPID int    `json:"from_pid"`
}

// records returns the log records of every process that match.
func records(c *ct.Cluster, match func(rec) bool) []rec {
	var out []rec
	s := bufio.NewScanner(strings.NewReader(c.Output()))
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		var r rec
		if json.Unmarshal(s.Bytes(), &r) == nil && match(r) {
			out = append(out, r)
		}
	}
	return out
}

func got(data string) func(rec) bool {
	return func(r rec) bool { return r.Msg == "got" && r.Data == data }
}

// waitRecords waits for n matching records, then a little longer so that a
// record too many would show.
func waitRecords(t *testing.T, c *ct.Cluster, n int, match func(rec) bool) []rec {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(records(c, match)) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	return records(c, match)
}

func receivers(rs []rec) []int {
	var pids []int
	for _, r := range rs {
		pids = append(pids, r.PID)
	}
	slices.Sort(pids)
	return pids
}

func sorted(pids ...int) []int {
	pids = slices.Clone(pids)
	slices.Sort(pids)
	return pids
}

func TestRoutingRules(t *testing.T) {
	c := start(t)
	mem := clusterPIDs(t, c)
	agentPID, a, b := mem.Agent, mem.Apps[0], mem.Apps[1]
	cl := pinned(t, c, a)

	tests := []struct {
		name   string
		op     string // send: worker a sends; agentsend: the agent sends
		route  string
		pid    int
		want   []int
		sender int
	}{
		{"app Broadcast reaches agent and every worker, sender included", "send", "all", 0, []int{agentPID, a, b}, a},
		{"app SendToApp reaches every worker, sender included", "send", "app", 0, []int{a, b}, a},
		{"app SendToAgent", "send", "agent", 0, []int{agentPID}, a},
		{"app SendTo another worker", "send", "pid", b, []int{b}, a},
		{"app SendTo itself", "send", "pid", a, []int{a}, a},
		{"app SendTo the agent", "send", "pid", agentPID, []int{agentPID}, a},
		{"agent Broadcast, itself included", "agentsend", "all", 0, []int{agentPID, a, b}, agentPID},
		{"agent SendToApp", "agentsend", "app", 0, []int{a, b}, agentPID},
		{"agent SendToAgent reaches itself", "agentsend", "agent", 0, []int{agentPID}, agentPID},
		{"agent SendTo a worker", "agentsend", "pid", b, []int{b}, agentPID},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := "route-" + strconv.Itoa(i)
			r := get(t, cl, c, q("op", tt.op, "route", tt.route, "pid", tt.pid, "action", "t", "data", token))
			if r.Err != "" || r.PID != a {
				t.Fatalf("send: %+v", r)
			}
			rs := waitRecords(t, c, len(tt.want), got(token))
			if g, w := receivers(rs), sorted(tt.want...); !slices.Equal(g, w) {
				t.Fatalf("received by %v, want %v (agent %d, workers %d %d)", g, w, agentPID, a, b)
			}
			wantFrom := "app"
			if tt.sender == agentPID {
				wantFrom = "agent"
			}
			for _, r := range rs {
				if r.From != wantFrom || r.FromPID != tt.sender {
					t.Errorf("pid %d saw the message from %s %d, want %s %d", r.PID, r.From, r.FromPID, wantFrom, tt.sender)
				}
			}
		})
	}

	for _, op := range []string{"send", "agentsend"} {
		t.Run(op+" SendRandom reaches one worker each time, and both over many", func(t *testing.T) {
			const n = 40
			for i := range n {
				if r := get(t, cl, c, q("op", op, "route", "random", "action", "t", "data", fmt.Sprintf("%s-random-%d", op, i))); r.Err != "" {
					t.Fatal(r.Err)
				}
			}
			count := map[int]int{}
			for i := range n {
				rs := waitRecords(t, c, 1, got(fmt.Sprintf("%s-random-%d", op, i)))
				if len(rs) != 1 {
					t.Fatalf("message %d received %d times, want once", i, len(rs))
				}
				count[rs[0].PID]++
			}
			if count[a] == 0 || count[b] == 0 || count[agentPID] != 0 {
				t.Errorf("random sends landed %v; want both workers (%d, %d) and never the agent", count, a, b)
			}
		})
	}

	t.Run("Once fires once per process", func(t *testing.T) {
		for range 2 {
			get(t, cl, c, q("op", "send", "route", "all", "action", "once", "data", "x"))
		}
		rs := waitRecords(t, c, 3, func(r rec) bool { return r.Msg == "got once" })
		if g, w := receivers(rs), sorted(agentPID, a, b); !slices.Equal(g, w) {
			t.Errorf("Once fired in %v, want once in each of %v", g, w)
		}
	})

	t.Run("unheard messages are counted and logged at debug", func(t *testing.T) {
		get(t, cl, c, q("op", "send", "route", "agent", "action", "nobody-listens", "data", "x"))
		l, _, err := c.WaitLog(5*time.Second, 0, func(l map[string]any) bool {
			return l["msg"] == "message not handled: nothing listens for its action" && l["action"] == "nobody-listens"
		})
		if err != nil {
			t.Fatal(err)
		}
		if l["level"] != "DEBUG" || l["unheard_total"] == nil {
			t.Errorf("log record %v; want action nobody-listens at DEBUG with unheard_total", l)
		}
	})
}

func TestOrderFromOneSenderToOneReceiver(t *testing.T) {
	c := start(t)
	mem := clusterPIDs(t, c)
	a, b := mem.Apps[0], mem.Apps[1]
	cl := pinned(t, c, a)
	const n = 20000
	// Unpaced, from one worker: to the agent, and to every worker.
	get(t, cl, c, q("op", "seqsend", "route", "agent", "n", n))
	get(t, cl, c, q("op", "seqsend", "route", "app", "n", n))
	for _, target := range []int{0, a, b} {
		var st seqStats
		deadline := time.Now().Add(20 * time.Second)
		for st.Count < n && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			r := get(t, cl, c, q("op", "call", "pid", target, "action", "seqstats"))
			if r.Err != "" {
				t.Fatal(r.Err)
			}
			json.Unmarshal(r.Reply, &st)
		}
		if st.Count != n || st.Broken != 0 {
			t.Errorf("pid %d (0: agent) received %d of %d with %d out of order; want all, in order", target, st.Count, n, st.Broken)
		}
	}
}

func TestSendsBeforeReadyAreQueuedAndDelivered(t *testing.T) {
	c := start(t)
	mem := clusterPIDs(t, c)
	// Each worker's hook sent early-appN-0..4 to the agent, and
	// appN-to-apps to every worker; the agent's hook sent agent-0..4 to
	// every worker. All before the cluster was ready.
	early := func(r rec) bool { return r.Msg == "got" && r.Action == "early" }
	waitRecords(t, c, 2*5+2*2+2*5, early)
	byReceiver := map[int][]string{}
	for _, r := range records(c, early) {
		byReceiver[r.PID] = append(byReceiver[r.PID], r.From+":"+r.Data)
	}
	var want []string
	for slot := 1; slot <= 2; slot++ {
		for i := range 5 {
			want = append(want, fmt.Sprintf("app:app%d-%d", slot, i))
		}
	}
	gotAgent := byReceiver[mem.Agent]
	slices.Sort(gotAgent) // two senders interleave; each one's order is checked below
	if !slices.Equal(gotAgent, want) {
		t.Errorf("agent received %v, want %v", byReceiver[mem.Agent], want)
	}
	for _, pid := range mem.Apps {
		var fromAgent, fromApps []string
		for _, s := range byReceiver[pid] {
			if strings.HasPrefix(s, "agent:") {
				fromAgent = append(fromAgent, s)
			} else {
				fromApps = append(fromApps, s)
			}
		}
		if w := []string{"agent:agent-0", "agent:agent-1", "agent:agent-2", "agent:agent-3", "agent:agent-4"}; !slices.Equal(fromAgent, w) {
			t.Errorf("worker %d received from the agent %v, want %v in that order", pid, fromAgent, w)
		}
		slices.Sort(fromApps)
		if w := []string{"app:app1-to-apps", "app:app2-to-apps"}; !slices.Equal(fromApps, w) {
			t.Errorf("worker %d received from workers %v, want %v", pid, fromApps, w)
		}
	}
	for slot := 1; slot <= 2; slot++ {
		var seq []string
		for _, s := range byReceiver[mem.Agent] {
			if strings.HasPrefix(s, fmt.Sprintf("app:app%d-", slot)) {
				seq = append(seq, s)
			}
		}
		if !slices.IsSorted(seq) {
			t.Errorf("agent received worker %d's early messages out of order: %v", slot, seq)
		}
	}
	if rs := records(c, func(r rec) bool { return r.Msg == "hook call answered" }); len(rs) != 2 {
		t.Errorf("%d hooks got the agent's answer to a call made before ready; want 2", len(rs))
	}
}

// agentSlowStart makes the next agent's hook take a while, so the master
// holds messages for it for a visible time.
func agentSlowStart(t *testing.T) (env string, arm func()) {
	flag := filepath.Join(t.TempDir(), "slow-agent")
	return "BROOD_TEST_AGENT_DELAY_FILE=" + flag, func() {
		if err := os.WriteFile(flag, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAgentKilledWithMessagesInFlight(t *testing.T) {
	seqFile := filepath.Join(t.TempDir(), "seq")
	slowEnv, slow := agentSlowStart(t)
	c := start(t, "BROOD_TEST_SEQ_FILE="+seqFile, slowEnv)
	mem := clusterPIDs(t, c)
	cl := pinned(t, c, mem.Apps[0])

	const n = 30000
	// Paced: about 10 messages a millisecond, for ~3 s, so that messages
	// are in flight when the agent dies and sent while it is away.
	get(t, cl, c, q("op", "seqsend", "route", "agent", "n", n, "pace", 10))
	killedAt := killAgentAfter(t, c, seqFile, 3000, mem.Agent, slow)
	if _, _, err := c.WaitLog(30*time.Second, 0, ct.Msg("seqsend done")); err != nil {
		t.Fatal(err)
	}
	// Every number reaches an agent; each agent sees a run without gaps,
	// and the new one starts no later than where the old one stopped.
	var runs map[int][]int
	var order []int
	deadline := time.Now().Add(30 * time.Second)
	for {
		runs, order = readSeq(t, seqFile)
		if len(order) == 2 && len(runs[order[1]]) > 0 && slices.Max(runs[order[1]]) == n || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(order) != 2 || order[0] != mem.Agent {
		t.Fatalf("seq file written by agents %v; want the old agent %d, then one new one", order, mem.Agent)
	}
	old, nw := runs[order[0]], runs[order[1]]
	for name, run := range map[string][]int{"old": old, "new": nw} {
		for i := 1; i < len(run); i++ {
			if run[i] != run[i-1]+1 {
				t.Fatalf("%s agent saw %d after %d: a gap or disorder", name, run[i], run[i-1])
			}
		}
	}
	if old[0] != 1 || nw[len(nw)-1] != n {
		t.Errorf("old agent started at %d, new agent ended at %d; want 1 and %d", old[0], nw[len(nw)-1], n)
	}
	if nw[0] > old[len(old)-1]+1 {
		t.Errorf("lost %d..%d: the old agent handled up to %d, the new one started at %d", old[len(old)-1]+1, nw[0]-1, old[len(old)-1], nw[0])
	}
	held, _, err := c.WaitLog(time.Second, killedAt, ct.Msg("delivered held messages to the new agent"))
	if err != nil {
		t.Errorf("the sender held nothing for the new agent: %v", err)
	}
	t.Logf("old agent handled 1..%d; new agent %d..%d (%d handled twice); sender held %v",
		old[len(old)-1], nw[0], nw[len(nw)-1], old[len(old)-1]-nw[0]+1, held["count"])
}

// A reload replaces every process, the agent and the sending worker
// included: every message the sender sent before it stopped reaches an
// agent, and each agent sees them in order, without gaps.
func TestReloadLosesNoMessageForTheAgent(t *testing.T) {
	seqFile := filepath.Join(t.TempDir(), "seq")
	c := start(t, "BROOD_TEST_SEQ_FILE="+seqFile, "BROOD_SHUTDOWN_TIMEOUT=4s")
	mem := clusterPIDs(t, c)
	const n = 1_000_000 // more than can be sent before the reload ends it
	// The pinned connection, idle, keeps the replaced sender for its next
	// request (up to the shutdown timeout less a second for the OnStop
	// hooks), so it still sends while the agent is replaced after it.
	get(t, pinned(t, c, mem.Apps[0]), c, q("op", "seqsend", "route", "agent", "n", n, "pace", 10))
	for lines(t, seqFile) < 2000 {
		time.Sleep(5 * time.Millisecond)
	}
	c.Signal(syscall.SIGHUP)
	if _, _, err := c.WaitLog(60*time.Second, 0, ct.Msg("reload complete")); err != nil {
		t.Fatal(err)
	}
	stopped, _, err := c.WaitLog(10*time.Second, 0, func(l map[string]any) bool {
		return l["msg"] == "seqsend stopped" && l["pid"] == float64(mem.Apps[0])
	})
	if err != nil {
		t.Fatalf("the sender did not stop: %v", err)
	}
	last := int(stopped["last"].(float64))

	var runs map[int][]int
	var order []int
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		runs, order = readSeq(t, seqFile)
		if len(order) > 0 && slices.Contains(runs[order[len(order)-1]], last) {
			break
		}
	}
	seen := map[int]bool{}
	for _, pid := range order {
		run := runs[pid]
		for i := 1; i < len(run); i++ {
			if run[i] != run[i-1]+1 {
				t.Errorf("agent %d saw %d after %d: a gap or disorder", pid, run[i], run[i-1])
			}
		}
		for _, v := range run {
			seen[v] = true
		}
	}
	for v := 1; v <= last; v++ {
		if !seen[v] {
			t.Fatalf("message %d of the %d sent before the sender stopped reached no agent (agents %v)", v, last, order)
		}
	}
	if len(order) != 2 || order[0] != mem.Agent {
		t.Errorf("agents that handled the messages: %v; want the old agent %d, then its successor", order, mem.Agent)
	}
	t.Logf("%d messages sent during the reload, all handled: %v", last, func() []string {
		var s []string
		for _, pid := range order {
			s = append(s, fmt.Sprintf("agent %d: %d..%d", pid, runs[pid][0], runs[pid][len(runs[pid])-1]))
		}
		return s
	}())
}

func lines(t *testing.T, path string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), "\n")
}

// readSeq reads "pid n" lines: each agent's numbers, and the agents in the
// order they first wrote.
func readSeq(t *testing.T, path string) (map[int][]int, []int) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	runs := map[int][]int{}
	var order []int
	s := bufio.NewScanner(f)
	for s.Scan() {
		var pid, n int
		if _, err := fmt.Sscan(s.Text(), &pid, &n); err != nil {
			continue // a line cut short by SIGKILL
		}
		if _, ok := runs[pid]; !ok {
			order = append(order, pid)
		}
		runs[pid] = append(runs[pid], n)
	}
	return runs, order
}

func TestCallFailuresEndTheCall(t *testing.T) {
	slowEnv, slow := agentSlowStart(t)
	c := start(t, slowEnv)
	mem := clusterPIDs(t, c)
	a, b := mem.Apps[0], mem.Apps[1]
	cl := pinned(t, c, a)
	call := func(kv ...any) (result, time.Duration) {
		t0 := time.Now()
		r := get(t, cl, c, q(append([]any{"op", "call"}, kv...)...))
		return r, time.Since(t0)
	}
	is := func(r result, what string) bool { return slices.Contains(r.Is, what) }

	t.Run("reply", func(t *testing.T) {
		r, _ := call("action", "echo", "json", `{"n":1}`)
		if r.Err != "" || string(r.Reply) != `{"n":1}` {
			t.Errorf("echo = %+v", r)
		}
		r, _ = call("pid", b, "action", "whoami")
		if r.Err != "" || string(r.Reply) != strconv.Itoa(b) {
			t.Errorf("Call(%d, whoami) = %+v", b, r)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		r, took := call("action", "slow", "json", 5000, "ms", 300)
		if !is(r, "deadline") || took > 3*time.Second {
			t.Errorf("slow call with a 300ms deadline: %+v after %s; want DeadlineExceeded soon after 300ms", r, took)
		}
	})
	t.Run("unknown action", func(t *testing.T) {
		r, _ := call("action", "no-such-action")
		if !is(r, "nohandler") {
			t.Errorf("got %+v; want ErrNoHandler", r)
		}
	})
	t.Run("no such process", func(t *testing.T) {
		r, took := call("pid", 1<<22-1, "action", "echo")
		if !is(r, "gone") || took > 3*time.Second {
			t.Errorf("got %+v after %s; want ErrTargetGone at once", r, took)
		}
	})
	t.Run("handler error and panic", func(t *testing.T) {
		r, _ := call("action", "fail")
		if !is(r, "remote") || !strings.Contains(r.Err, "no such thing") {
			t.Errorf("got %+v; want a RemoteError saying no such thing", r)
		}
		r, _ = call("pid", b, "action", "panic")
		if !is(r, "panic") || !strings.Contains(r.Err, "call handler bug") {
			t.Errorf("got %+v; want a RemoteError for the panic", r)
		}
		if r, _ := call("pid", b, "action", "whoami"); string(r.Reply) != strconv.Itoa(b) {
			t.Errorf("worker %d after its handler panicked: %+v", b, r)
		}
	})
	t.Run("worker dies mid-call", func(t *testing.T) {
		res := make(chan result, 1)
		var took time.Duration
		at := c.Lines()
		go func() { r, d := call("pid", b, "action", "slow", "json", 20000, "ms", 25000); took = d; res <- r }()
		waitSlowCall(t, c, at, b)
		syscall.Kill(b, syscall.SIGKILL)
		r := <-res
		if !is(r, "gone") || took > 10*time.Second {
			t.Errorf("got %+v after %s; want ErrTargetGone soon after the kill", r, took)
		}
		if _, _, err := c.WaitLog(30*time.Second, 0, ct.Msg("replacement ready")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("agent restarts mid-call", func(t *testing.T) {
		res := make(chan result, 1)
		var took time.Duration
		at := c.Lines()
		go func() { r, d := call("action", "slow", "json", 20000, "ms", 25000); took = d; res <- r }()
		waitSlowCall(t, c, at, mem.Agent)
		syscall.Kill(mem.Agent, syscall.SIGKILL)
		r := <-res
		if !is(r, "gone") || took > 10*time.Second {
			t.Errorf("got %+v after %s; want ErrTargetGone soon after the kill", r, took)
		}
		if _, _, err := c.WaitLog(30*time.Second, at, ct.Msg("replacement ready")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a call made while the agent restarts waits for the new agent", func(t *testing.T) {
		agent := clusterPIDs(t, c).Agent
		slow()
		at := c.Lines()
		syscall.Kill(agent, syscall.SIGKILL)
		if _, _, err := c.WaitLog(10*time.Second, at, ct.Msg("no agent: holding messages")); err != nil {
			t.Fatal(err)
		}
		r, _ := call("action", "whoami", "ms", 20000)
		if r.Err != "" || string(r.Reply) == strconv.Itoa(agent) {
			t.Errorf("got %+v; want the new agent's pid (the old was %d)", r, agent)
		}
	})
}

// waitSlowCall waits for pid to log that a slow call started, after log
// line at (earlier subtests make slow calls too).
func waitSlowCall(t *testing.T, c *ct.Cluster, at, pid int) {
	t.Helper()
	_, _, err := c.WaitLog(10*time.Second, at, func(l map[string]any) bool {
		return l["msg"] == "slow call started" && l["pid"] == float64(pid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOversizeRefusedAtTheSender(t *testing.T) {
	c := start(t, "BROOD_TEST_MAX_MESSAGE=65536")
	cl := ct.Client(30 * time.Second)
	r := get(t, cl, c, q("op", "send", "route", "agent", "action", "t", "size", 70000))
	if !slices.Contains(r.Is, "toolarge") || !strings.Contains(r.Err, "WithMaxMessageSize") {
		t.Errorf("70000 bytes with a 65536 limit: %+v; want ErrTooLarge naming WithMaxMessageSize", r)
	}
	r = get(t, cl, c, q("op", "call", "action", "echo", "size", 70000))
	if !slices.Contains(r.Is, "toolarge") {
		t.Errorf("a call with 70000 bytes: %+v; want ErrTooLarge", r)
	}
	r = get(t, cl, c, q("op", "call", "action", "big", "json", 70000))
	if !slices.Contains(r.Is, "toolarge") {
		t.Errorf("a reply of 70000 bytes: %+v; want ErrTooLarge", r)
	}
	r = get(t, cl, c, q("op", "call", "action", "echo", "size", 60000))
	if r.Err != "" || len(r.Reply) != 60002 {
		t.Errorf("60000 bytes under the limit: err %q, reply of %d bytes", r.Err, len(r.Reply))
	}
	if strings.Contains(c.Output(), "exited unexpectedly") {
		t.Errorf("a process died")
	}
}

func TestMaxMessageSizeValidated(t *testing.T) {
	c := ct.Start(t, "msg", "BROOD_ADDR=127.0.0.1:0", "BROOD_TEST_MAX_MESSAGE=100")
	if err, exited := c.Wait(20 * time.Second); !exited || err == nil {
		t.Fatalf("exited=%v err=%v; want a refusal", exited, err)
	}
	if !strings.Contains(c.Messages(), "invalid WithMaxMessageSize 100: want a size in bytes from 1024") {
		t.Errorf("output does not name the option and its range:\n%s", c.Messages())
	}
}

func TestPanickingHandlerIsLoggedAndSurvived(t *testing.T) {
	c := start(t)
	mem := clusterPIDs(t, c)
	cl := ct.Client(30 * time.Second)
	get(t, cl, c, q("op", "send", "route", "agent", "action", "boom", "data", "x"))
	get(t, cl, c, q("op", "send", "route", "agent", "action", "t", "data", "after-boom"))
	l, _, err := c.WaitLog(5*time.Second, 0, ct.Msg("message handler panicked"))
	if err != nil {
		t.Fatal(err)
	}
	if l["action"] != "boom" || !strings.Contains(fmt.Sprint(l["panic"]), "handler bug") {
		t.Errorf("panic logged as %v; want its action and panic value", l)
	}
	if rs := waitRecords(t, c, 1, got("after-boom")); len(rs) != 1 || rs[0].PID != mem.Agent {
		t.Errorf("message after the panic: %+v; want it handled by the same agent %d", rs, mem.Agent)
	}
}

func TestMalformedFrameResetsOnlyThatChild(t *testing.T) {
	c := start(t)
	mem := clusterPIDs(t, c)
	victim := mem.Apps[0]
	at := c.Lines()
	// POST, not GET: the victim may exit before it answers, and net/http's
	// client would then retry a GET on another connection, corrupting a
	// second worker's channel. Whether the victim answers is not the point.
	if resp, err := pinned(t, c, victim).Post(c.URL("/do?op=garbage"), "text/plain", nil); err == nil {
		resp.Body.Close()
	}
	l, _, err := c.WaitLog(10*time.Second, at, ct.Msg("malformed frame from child"))
	if err != nil {
		t.Fatal(err)
	}
	if l["child_pid"] != float64(victim) {
		t.Errorf("malformed frame blamed on %v, want %d", l["child_pid"], victim)
	}
	if _, _, err := c.WaitLog(20*time.Second, at, ct.Msg("replacement ready")); err != nil {
		t.Fatalf("child with the reset channel not replaced: %v", err)
	}
	if !ct.Alive(c.Cmd.Process.Pid) {
		t.Fatal("master died")
	}
	after := clusterPIDs(t, c)
	if after.Agent != mem.Agent || slices.Contains(after.Apps, victim) || !slices.Contains(after.Apps, mem.Apps[1]) {
		t.Errorf("after the reset: %+v; want the same agent and other worker, and a new worker for %d", after, victim)
	}
	get(t, ct.Client(30*time.Second), c, q("op", "send", "route", "all", "action", "t", "data", "after-reset"))
	if rs := waitRecords(t, c, 3, got("after-reset")); len(rs) != 3 {
		t.Errorf("broadcast after the reset reached %d processes, want 3", len(rs))
	}
}

// killAgentAfter waits until the agent has logged n sequence lines, makes
// the next agent's start slow (slow), SIGKILLs the agent and waits for its
// replacement to be ready. It returns the log line of the kill.
func killAgentAfter(t *testing.T, c *ct.Cluster, seqFile string, n int, agent int, slow func()) (killedAt int) {
	t.Helper()
	for lines(t, seqFile) < n {
		time.Sleep(5 * time.Millisecond)
	}
	slow()
	killedAt = c.Lines()
	if err := syscall.Kill(agent, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.WaitLog(30*time.Second, killedAt, ct.Msg("replacement ready")); err != nil {
		t.Fatalf("agent not replaced: %v", err)
	}
	return killedAt
}
