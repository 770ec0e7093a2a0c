package framework

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ct "github.com/broodhq/brood/internal/clustertest"
	ctlsock "github.com/broodhq/brood/internal/control"
)

func TestBalanceIsValidated(t *testing.T) {
	tests := []struct {
		opts []Option
		env  map[string]string
		want string // the policy, or the start of the error's text
	}{
		{nil, nil, BalanceHash},
		{[]Option{WithBalance("sticky")}, nil, BalanceSticky},
		{[]Option{WithBalance("hash")}, map[string]string{"BROOD_BALANCE": "sticky"}, BalanceSticky},
		{[]Option{WithBalance("shared")}, nil, BalanceShared},
		{nil, map[string]string{"BROOD_BALANCE": "shared"}, BalanceShared},
		{[]Option{WithBalance("round-robin")}, nil, `invalid WithBalance "round-robin": want one of hash, sticky, shared`},
		{nil, map[string]string{"BROOD_BALANCE": "Sticky"}, `invalid $BROOD_BALANCE "Sticky": want one of hash, sticky, shared`},
		{nil, map[string]string{"BROOD_BALANCE": "least-conn"}, `invalid $BROOD_BALANCE "least-conn": want one of hash, sticky, shared`},
		{[]Option{WithBalance("sticky"), WithWorkers(300)}, nil, `invalid WithBalance "sticky": sticky spreads clients over 256 buckets`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			c, err := resolve(tt.opts, env(tt.env))
			if strings.HasPrefix(tt.want, "invalid") {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("got %v; want a configuration error saying %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.balancePolicy(); got != tt.want {
				t.Errorf("policy %q; want %q", got, tt.want)
			}
		})
	}
}

// slotsBySource asks /pid n times from each source over fresh connections
// and returns the one slot each source reached; it fails the test if a
// source reached two.
func slotsBySource(t *testing.T, c *ct.Cluster, sources, n int) map[string]string {
	t.Helper()
	got := map[string]string{}
	for i := range sources {
		src := fmt.Sprintf("127.0.0.%d", i+2)
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
		cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			},
		}}
		for range n {
			_, body, err := ct.Get(cl, c.URL("/pid"))
			if err != nil {
				t.Fatalf("GET /pid from %s: %v", src, err)
			}
			var pid int
			var slot string
			fmt.Sscan(body, &pid, &slot)
			if prev, ok := got[src]; ok && prev != slot {
				t.Fatalf("%s reached slots %s and %s; want one", src, prev, slot)
			}
			got[src] = slot
		}
	}
	return got
}

func movedSources(a, b map[string]string) int {
	n := 0
	for src, s := range a {
		if b[src] != s {
			n++
		}
	}
	return n
}

// TestStickyKeepsClientsThroughCrashReloadAndScaling runs a real cluster
// with sticky balancing: a source's connections reach one slot, the same
// after its worker is killed and after a rolling reload, and scaling moves
// few sources.
func TestStickyKeepsClientsThroughCrashReloadAndScaling(t *testing.T) {
	c := startOps(t, "BROOD_BALANCE=sticky", "BROOD_WORKERS=3")
	const sources = 200
	before := slotsBySource(t, c, sources, 2)
	slots := map[string]bool{}
	for _, s := range before {
		slots[s] = true
	}
	if len(slots) != 3 {
		t.Fatalf("%d sources reached slots %v; want all 3", sources, slots)
	}
	// Status shows how the kernel spread the connections: every slot
	// accepted some, 2 per source in all (once the heartbeats carried
	// them).
	var accepted uint64
	var st *ctlsock.Status
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st, accepted = status(t, controlPath(t, c)), 0
		for _, p := range st.Processes {
			if p.Role == "worker" {
				accepted += p.Accepted
			}
		}
		if accepted >= 2*sources || time.Now().After(deadline) {
			break
		}
	}
	if accepted < 2*sources {
		t.Errorf("status: %d connections accepted; want at least %d", accepted, 2*sources)
	}
	for _, p := range st.Processes {
		if p.Role == "worker" && p.Accepted == 0 {
			t.Errorf("status: worker %d accepted no connection", p.Slot)
		}
	}

	_, body, err := ct.Get(ct.Client(5*time.Second), c.URL("/pid"))
	if err != nil {
		t.Fatal(err)
	}
	var victim int
	fmt.Sscan(body, &victim)
	at := c.Lines()
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	at = waitMsg(t, c, at, "replacement ready", 30*time.Second) + 1
	if n := movedSources(before, slotsBySource(t, c, sources, 1)); n != 0 {
		t.Errorf("%d of %d sources changed slot after worker %d was killed; want 0", n, sources, victim)
	}

	c.Signal(syscall.SIGHUP)
	at = waitMsg(t, c, at, "reload complete", 60*time.Second) + 1
	if n := movedSources(before, slotsBySource(t, c, sources, 1)); n != 0 {
		t.Errorf("%d of %d sources changed slot after a rolling reload; want 0", n, sources)
	}

	c.Signal(syscall.SIGTTIN)
	at = waitMsg(t, c, at, "scaled", 30*time.Second) + 1
	four := slotsBySource(t, c, sources, 1)
	up := movedSources(before, four)
	c.Signal(syscall.SIGTTOU)
	waitMsg(t, c, at, "scaled", 30*time.Second)
	// The retired worker drains what it accepted while its socket passes
	// to a survivor; until it exits, both answer for that socket.
	deadline := time.Now().Add(20 * time.Second)
	for len(c.Children()) != 4 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	down := movedSources(four, slotsBySource(t, c, sources, 1))
	t.Logf("of %d sources, %d moved scaling 3→4, %d scaling 4→3", sources, up, down)
	if limit := sources * 3 / 2 / 4; up == 0 || up > limit || down > limit {
		t.Errorf("%d sources moved scaling 3→4 and %d scaling 4→3; want about 1/4 of %d, at most %d", up, down, sources, limit)
	}
}

// pidOf asks /pid over cl and returns the pid that answered.
func pidOf(t *testing.T, cl *http.Client, c *ct.Cluster) int {
	t.Helper()
	_, body, err := ct.Get(cl, c.URL("/pid"))
	if err != nil {
		t.Fatalf("GET /pid: %v", err)
	}
	var pid int
	fmt.Sscan(body, &pid)
	return pid
}

// TestSharedStoppedWorkerGetsNoConnections stops a worker with SIGSTOP:
// with balance shared every new connection goes to the workers that
// accept, and none waits for the stopped one (with hash, a third of them
// would queue on its socket until it runs again).
func TestSharedStoppedWorkerGetsNoConnections(t *testing.T) {
	c := startOps(t, "BROOD_BALANCE=shared", "BROOD_WORKERS=3")
	fresh := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	victim := pidOf(t, fresh, c)
	if err := syscall.Kill(victim, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(victim, syscall.SIGCONT) })
	// kill returns before the process stops: until it has, it may still
	// accept the next connection and then hold it unanswered.
	waitStopped(t, victim)
	seen := map[int]int{}
	for range 90 {
		seen[pidOf(t, fresh, c)]++
	}
	if seen[victim] > 0 {
		t.Errorf("the stopped worker %d answered %d of 90 requests", victim, seen[victim])
	}
	if len(seen) != 2 {
		t.Errorf("answered by %v; want the two running workers", seen)
	}
}

// TestSharedSpreadsKeepAliveConnections opens connections together and
// keeps them: the gate stops the first worker to wake from taking them
// all, as a bare shared queue would.
func TestSharedSpreadsKeepAliveConnections(t *testing.T) {
	c := startOps(t, "BROOD_BALANCE=shared", "BROOD_WORKERS=3")
	// Let every worker send a heartbeat and get its share.
	time.Sleep(1500 * time.Millisecond)
	const n = 12
	// All at once, as a client's pool opens them: the queue fills before
	// any worker wakes.
	conns := make([]net.Conn, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() { conns[i], errs[i] = net.DialTimeout("tcp", c.Addr, 5*time.Second) })
	}
	wg.Wait()
	for i, cn := range conns {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		defer cn.Close()
	}
	perPID := map[int]int{}
	for _, cn := range conns {
		cn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(cn, "GET /pid HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(cn), nil)
		if err != nil {
			t.Fatal(err)
		}
		var pid int
		fmt.Fscan(resp.Body, &pid)
		resp.Body.Close()
		perPID[pid]++
	}
	t.Logf("%d connections per worker: %v", n, perPID)
	if len(perPID) != 3 {
		t.Errorf("%d workers hold the connections; want all 3", len(perPID))
	}
	for pid, k := range perPID {
		if k > n/2 {
			t.Errorf("worker %d holds %d of %d connections; want them spread over 3 workers", pid, k, n)
		}
	}
}

// TestSharedDropsNothingThroughReloadAndScale runs the ops tests' load
// through rolling reloads and scaling with balance shared: the shared
// socket lives in the master, so every queued connection is served.
func TestSharedDropsNothingThroughReloadAndScale(t *testing.T) {
	c := startOps(t, "BROOD_BALANCE=shared")
	path := controlPath(t, c)
	ls := loads(c)
	reloads(t, c, 2)
	for _, n := range []int{3, 1, 2} {
		scale(t, path, n)
		waitStatus(t, path, 30*time.Second, fmt.Sprintf("scaled to %d", n), func(st *ctlsock.Status) bool {
			return st.Workers == n && st.Processes[0].State == "running"
		})
		time.Sleep(500 * time.Millisecond)
	}
	stopLoads(t, ls)
	if seen := servers(t, c, 100); len(seen) != 2 {
		t.Errorf("after scaling to 2, %d workers answer: %v", len(seen), seen)
	}
}

// waitStopped waits until pid's state in /proc is "T (stopped)".
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		// pid (comm) state ...: comm may hold spaces, so look past its ')'.
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && strings.HasPrefix(string(b[i:]), ") T") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d not stopped 5s after SIGSTOP: %s", pid, b)
		}
		time.Sleep(time.Millisecond)
	}
}
