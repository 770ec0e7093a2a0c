package framework

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	ct "github.com/broodhq/brood/internal/clustertest"
	ctlsock "github.com/broodhq/brood/internal/control"
)

const local = "BROOD_ADDR=127.0.0.1:0"

func startBasic(t *testing.T, env ...string) *ct.Cluster {
	t.Helper()
	c := ct.Start(t, "basic", append([]string{local, "BROOD_WORKERS=2"}, env...)...)
	c.WaitReady(30 * time.Second)
	return c
}

func TestStartupOrderAndReadyLine(t *testing.T) {
	c := startBasic(t)

	_, agentAt, err := c.WaitLog(time.Second, 0, ct.Msg("agent hook ran"))
	if err != nil {
		t.Fatal(err)
	}
	_, appAt, err := c.WaitLog(time.Second, 0, ct.Msg("app hook ran"))
	if err != nil {
		t.Fatal(err)
	}
	if appAt < agentAt {
		t.Errorf("a worker's hook ran (line %d) before the agent's (line %d); want agent first", appAt, agentAt)
	}
	ready, readyAt, _ := c.WaitLog(time.Second, 0, ct.Msg("ready on http://"))
	if !strings.Contains(ready["msg"].(string), "(2 workers,") {
		t.Errorf("ready line %q does not say 2 workers", ready["msg"])
	}
	if readyAt < appAt {
		t.Errorf("ready line came before the workers' hooks")
	}

	status, body, err := ct.Get(ct.Client(5*time.Second), c.URL("/"))
	if err != nil || status != 200 || body != "Hello, World!" {
		t.Fatalf("GET / = %d %q, %v; want 200 Hello, World!", status, body, err)
	}

	// Processes are recognisable in ps: argv[0] is "NAME: role".
	name := filepath.Base(os.Args[0])
	var titles []string
	for _, pid := range c.Children() {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		titles = append(titles, strings.SplitN(string(cmdline), "\x00", 2)[0])
	}
	for _, want := range []string{name + ": agent", name + ": worker 1", name + ": worker 2"} {
		found := false
		for _, got := range titles {
			found = found || got == want
		}
		if !found {
			t.Errorf("no child titled %q among %q", want, titles)
		}
	}
	if len(titles) != 3 {
		t.Errorf("master has %d children %q, want 3", len(titles), titles)
	}
}

func TestWorkerKilledUnderLoadIsReplaced(t *testing.T) {
	c := startBasic(t)
	client := ct.Client(5 * time.Second)
	_, body, err := ct.Get(client, c.URL("/pid"))
	if err != nil {
		t.Fatal(err)
	}
	var victim, slot int
	fmt.Sscan(body, &victim, &slot)

	var ok, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	const clients = 8
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Fresh connections, so that every request is spread anew.
			cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			for i := 0; i < 100000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if st, _, err := ct.Get(cl, c.URL("/")); err == nil && st == 200 {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := c.Lines()
	if _, _, err := c.WaitLog(20*time.Second, killedAt, ct.Msg("replacement ready")); err != nil {
		t.Fatalf("killed worker %d not replaced: %v", victim, err)
	}
	before := ok.Load()
	time.Sleep(500 * time.Millisecond)
	failedBefore := failed.Load()
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if ok.Load() <= before {
		t.Errorf("no request succeeded after the replacement")
	}
	if f := failed.Load() - failedBefore; f != 0 {
		t.Errorf("%d requests failed after the replacement was ready; want 0", f)
	}
	// Only requests in flight on the killed worker may fail: connections
	// queued on the slot's socket wait for the replacement.
	if f := failed.Load(); f > clients {
		t.Errorf("%d requests failed around the kill; want at most %d (one in flight per client)", f, clients)
	}
	t.Logf("served %d, failed %d around the kill", ok.Load(), failed.Load())

	// The replacement serves the same slot.
	seen := map[int]bool{}
	for range 200 {
		_, body, err := ct.Get(&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}, c.URL("/pid"))
		if err != nil {
			t.Fatal(err)
		}
		var pid, s int
		fmt.Sscan(body, &pid, &s)
		if pid == victim {
			t.Fatalf("killed worker %d still answering", victim)
		}
		seen[s] = true
	}
	if !seen[slot] {
		t.Errorf("slot %d never answered after its worker was replaced (saw %v)", slot, seen)
	}
}

func TestMasterKilledLeavesNoChildren(t *testing.T) {
	c := startBasic(t)
	kids := c.Children()
	if len(kids) != 3 {
		t.Fatalf("got %d children, want 3", len(kids))
	}
	start := time.Now()
	c.Cmd.Process.Kill()
	for _, pid := range kids {
		for ct.Alive(pid) {
			if time.Since(start) > 5*time.Second {
				t.Fatalf("child %d still alive %s after the master was killed", pid, time.Since(start))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	t.Logf("all children gone %s after SIGKILL of the master", time.Since(start))
}

func TestGracefulStopFinishesInFlightRequest(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			c := startBasic(t)
			type result struct {
				status int
				body   string
				err    error
			}
			res := make(chan result, 1)
			go func() {
				st, body, err := ct.Get(ct.Client(20*time.Second), c.URL("/slow?ms=1500"))
				res <- result{st, body, err}
			}()
			if _, _, err := c.WaitLog(10*time.Second, 0, ct.Msg("slow request started")); err != nil {
				t.Fatal(err)
			}
			c.Signal(sig)
			r := <-res
			if r.err != nil || r.status != 200 || r.body != "done" {
				t.Errorf("in-flight request during graceful stop: %d %q %v; want 200 done", r.status, r.body, r.err)
			}
			exitsCleanly(t, c, 20*time.Second)
		})
	}
}

func TestCtrlCStopsOnceThroughTheMaster(t *testing.T) {
	c := startBasic(t)
	kids := c.Children()
	// A terminal's Ctrl-C signals the whole process group.
	if err := syscall.Kill(-c.Cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	exitsCleanly(t, c, 20*time.Second)
	if strings.Contains(c.Output(), "exited unexpectedly") {
		t.Errorf("a child died of the SIGINT instead of leaving it to the master:\n%s", c.Output())
	}
	for _, pid := range kids {
		if ct.Alive(pid) {
			t.Errorf("child %d outlived the master", pid)
		}
	}
}

func TestQuitAndSecondTermStopFast(t *testing.T) {
	for _, name := range []string{"QUIT", "TERM twice"} {
		t.Run(name, func(t *testing.T) {
			c := startBasic(t, "BROOD_SHUTDOWN_TIMEOUT=60s")
			go ct.Get(ct.Client(60*time.Second), c.URL("/slow?ms=30000"))
			if _, _, err := c.WaitLog(10*time.Second, 0, ct.Msg("slow request started")); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if name == "QUIT" {
				c.Signal(syscall.SIGQUIT)
			} else {
				c.Signal(syscall.SIGTERM)
				time.Sleep(200 * time.Millisecond)
				c.Signal(syscall.SIGTERM)
			}
			if _, exited := c.Wait(15 * time.Second); !exited {
				t.Fatalf("master still running %s after %s with a 30s request in flight", time.Since(start), name)
			}
			t.Logf("stopped in %s", time.Since(start))
		})
	}
}

func TestHandlerPanicAnswers500AndWorkerKeepsServing(t *testing.T) {
	c := startBasic(t)
	// One keep-alive connection: all three requests reach the same worker.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 1}}
	_, before, err := ct.Get(client, c.URL("/pid"))
	if err != nil {
		t.Fatal(err)
	}
	status, _, err := ct.Get(client, c.URL("/panic"))
	if err != nil || status != 500 {
		t.Fatalf("GET /panic = %d, %v; want 500", status, err)
	}
	_, after, err := ct.Get(client, c.URL("/pid"))
	if err != nil {
		t.Fatal(err)
	}
	if before != after {
		t.Errorf("worker changed after a panic: %q then %q; want the same worker", before, after)
	}
	if strings.Contains(c.Output(), "exited unexpectedly") {
		t.Errorf("a worker died of a handler panic")
	}
}

func TestBadConfigurationIsRefused(t *testing.T) {
	tests := []struct {
		env  string
		want string
	}{
		{"BROOD_WORKERS=0", "$BROOD_WORKERS 0: workers must be between 1 and 512"},
		{"BROOD_WORKERS=100000", "workers must be between 1 and 512"},
		{"BROOD_WORKERS=many", `$BROOD_WORKERS "many": want a whole number`},
		{"BROOD_ADDR=localhost", `$BROOD_ADDR "localhost": want host:port`},
		{"BROOD_ADDR=:http8080", "want a numeric port"},
		{"PORT=99999", `$PORT "99999": want a port number from 0 to 65535`},
		{"BROOD_SHUTDOWN_TIMEOUT=-1s", "$BROOD_SHUTDOWN_TIMEOUT -1s: want a duration from 0s"},
		{"BROOD_SHUTDOWN_TIMEOUT=soon", `want a duration such as "30s"`},
		{"BROOD_LOG_LEVEL=loud", "want debug, info, warn or error"},
		{"BROOD_TRUSTED_PROXIES=10.0.0.0/99", `$BROOD_TRUSTED_PROXIES "10.0.0.0/99"`},
		{"BROOD_MAX_RSS=1", "$BROOD_MAX_RSS 1: want 0 (no limit) or at least 16777216 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			c := ct.Start(t, "basic", tt.env)
			exitsFailing(t, c, 20*time.Second)
			if out := c.Messages(); !strings.Contains(out, tt.want) {
				t.Errorf("output does not name the problem %q:\n%s", tt.want, out)
			}
			if strings.Contains(c.Output(), `"msg":"started"`) {
				t.Errorf("a child was started despite the bad configuration")
			}
		})
	}
}

func TestTakenPortFailsStartupCleanly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c := ct.Start(t, "basic", "BROOD_ADDR="+ln.Addr().String())
	exitsFailing(t, c, 20*time.Second)
	if out := c.Output(); !strings.Contains(out, "address already in use") || !strings.Contains(out, ln.Addr().String()) {
		t.Errorf("error does not name the taken address:\n%s", out)
	}
}

func TestStartupFailureNamesTheCauseAndLeavesNothing(t *testing.T) {
	tests := []struct {
		app  string
		want string
	}{
		{"agent-fails", "agent failed to start: agent: WithAgent hook: cannot reach the job queue"},
		{"worker-crashes", "worker 2 failed to start: exit status 7"},
	}
	for _, tt := range tests {
		t.Run(tt.app, func(t *testing.T) {
			c := ct.Start(t, tt.app, local, "BROOD_WORKERS=2")
			var kids []int
			for i := 0; i < 200 && len(kids) == 0; i++ {
				kids = c.Children()
				time.Sleep(time.Millisecond)
			}
			exitsFailing(t, c, 20*time.Second)
			if out := c.Output(); !strings.Contains(out, tt.want) {
				t.Errorf("output does not say %q:\n%s", tt.want, out)
			}
			for _, pid := range kids {
				if ct.Alive(pid) {
					t.Errorf("child %d left running after a failed start", pid)
				}
			}
		})
	}
}

func TestCrashLoopStopsRestartingTheSlot(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "crash")
	c := startBasicApp(t, "crash-loop", "BROOD_TEST_CRASH_FLAG="+flag)
	_, body, _ := ct.Get(ct.Client(5*time.Second), c.URL("/pid"))
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// Kill slot 2's worker; from now on it crashes at every start.
	for _, pid := range c.Children() {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.Contains(string(cmdline), "worker 2") {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	waitStatus(t, controlPath(t, c), 60*time.Second, "slot 2 given up", func(st *ctlsock.Status) bool {
		for _, p := range st.Processes {
			if p.Slot == 2 && p.State == "given-up" {
				return true
			}
		}
		return false
	})
	// Slot 1 keeps serving; the master keeps running.
	if st, _, err := ct.Get(ct.Client(5*time.Second), c.URL("/")); err != nil || st != 200 {
		t.Errorf("after slot 2 gave up, GET / = %d, %v; want 200 from slot 1", st, err)
	}
	_ = body
	if _, exited := c.Wait(100 * time.Millisecond); exited {
		t.Errorf("master exited although slot 1 still serves")
	}
}

func TestAllWorkersInCrashLoopStopsTheMaster(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "crash")
	c := startBasicApp(t, "crash-loop", "BROOD_TEST_CRASH_FLAG="+flag, "BROOD_TEST_CRASH_ALL=1")
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, pid := range c.Children() {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.Contains(string(cmdline), "worker") {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	exitsFailing(t, c, 60*time.Second)
	if !strings.Contains(c.Output(), "every worker is in a crash loop") {
		t.Errorf("exit does not say why")
	}
}

func startBasicApp(t *testing.T, app string, env ...string) *ct.Cluster {
	t.Helper()
	c := ct.Start(t, app, append([]string{local, "BROOD_WORKERS=2"}, env...)...)
	c.WaitReady(30 * time.Second)
	return c
}

func TestRoleWithoutMasterIsRefused(t *testing.T) {
	for _, role := range []string{"worker", "agent", "janitor"} {
		t.Run(role, func(t *testing.T) {
			c := ct.Start(t, "basic", "BROOD_ROLE="+role, "BROOD_SLOT=1")
			exitsFailing(t, c, 20*time.Second)
			if out := c.Output(); !strings.Contains(out, "unset BROOD_ROLE to start a master") {
				t.Errorf("refusal does not say what to do:\n%s", out)
			}
		})
	}
}

func TestWorkerGOMAXPROCSSharesTheCPUs(t *testing.T) {
	c := startBasic(t)
	for _, pid := range c.Children() {
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if !strings.Contains(string(cmdline), "worker") || os.Getenv("GOMAXPROCS") != "" {
			continue
		}
		want := "GOMAXPROCS=" + strconv.Itoa(max(1, runtimeCPUs()/2))
		if !strings.Contains(string(env), want) {
			t.Errorf("worker %d environment lacks %s", pid, want)
		}
	}
}
