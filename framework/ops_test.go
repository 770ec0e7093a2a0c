package framework

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/broodhq/brood/agent"
	"github.com/broodhq/brood/app"
	ct "github.com/broodhq/brood/internal/clustertest"
	ctlsock "github.com/broodhq/brood/internal/control"
	"github.com/broodhq/brood/internal/protocol"
	"github.com/broodhq/brood/messenger"
)

func init() {
	testApps["ops"] = func() error {
		return Run(opsRouter(), withRestartMin(20*time.Millisecond), WithAgent(opsAgent), WithApp(func(a *app.App) error {
			gen := os.Getenv(protocol.EnvGeneration)
			if flag := os.Getenv("BROOD_TEST_FAIL_FLAG"); gen != "1" && flag != "" {
				if _, err := os.Stat(flag); err == nil {
					only := os.Getenv("BROOD_TEST_FAIL_SLOT")
					if only == "" || only == fmt.Sprint(a.Slot()) {
						return fmt.Errorf("generation %s refuses to start", gen)
					}
				}
			}
			return nil
		}))
	}
}

// opsAgent counts visits, slowly enough that calls are in flight whenever
// the agent is told to stop, and answers with its pid. With
// BROOD_TEST_SLOW_JOB_STOP it also runs a job that takes 3s to wind down
// when the agent stops.
func opsAgent(a *agent.Agent) error {
	var visits atomic.Int64
	a.Messenger().Handle("visit", func(context.Context, messenger.Message) (any, error) {
		time.Sleep(2 * time.Millisecond)
		return [2]int64{visits.Add(1), int64(os.Getpid())}, nil
	})
	if os.Getenv("BROOD_TEST_SLOW_JOB_STOP") != "" {
		a.Every(200*time.Millisecond, "winddown", func(ctx context.Context) error {
			<-ctx.Done()
			a.Logger().Info("job winding down")
			time.Sleep(3 * time.Second)
			return nil
		})
	}
	return nil
}

// world is the lock every request takes: /hang holds it forever, the way a
// deadlock on a shared resource freezes a real worker.
var world sync.RWMutex

func opsRouter() http.Handler {
	r := chi.NewRouter()
	hello := func(w http.ResponseWriter, r *http.Request) {
		world.RLock()
		defer world.RUnlock()
		fmt.Fprint(w, "Hello, World!")
	}
	r.Get("/", hello)
	r.Post("/", hello)
	r.Post("/visit", func(w http.ResponseWriter, r *http.Request) {
		var visit [2]int64 // count, agent pid
		if err := app.FromContext(r.Context()).Messenger().CallAgent(r.Context(), "visit", nil, &visit); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "%d %d", visit[0], visit[1])
	})
	// A long-lived connection taken over with Hijack, as a WebSocket is:
	// it greets, then echoes lines. The polite one says bye and closes when
	// its worker starts draining; the stubborn one ignores that.
	r.Get("/ws", func(w http.ResponseWriter, r *http.Request) {
		a := app.FromContext(r.Context())
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nhello %d\n", os.Getpid())
		rw.Flush()
		lines := make(chan string)
		go func() {
			defer close(lines)
			for {
				line, err := rw.ReadString('\n')
				if err != nil {
					return
				}
				lines <- line
			}
		}()
		draining := a.Draining()
		if r.URL.Query().Get("stubborn") != "" {
			draining = nil
		}
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					return
				}
				rw.WriteString(line)
				rw.Flush()
			case <-draining:
				rw.WriteString("bye\n")
				rw.Flush()
				return
			}
		}
	})
	r.Get("/pid", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%d %d %s", os.Getpid(), app.FromContext(r.Context()).Slot(), os.Getenv(protocol.EnvGeneration))
	})
	r.Get("/hang", func(w http.ResponseWriter, r *http.Request) {
		world.Lock()
		select {} // never unlocks
	})
	return r
}

func startOps(t *testing.T, env ...string) *ct.Cluster {
	t.Helper()
	c := ct.Start(t, "ops", append([]string{local, "BROOD_WORKERS=2", "BROOD_SHUTDOWN_TIMEOUT=10s"}, env...)...)
	c.WaitReady(30 * time.Second)
	return c
}

// servers samples which worker processes answer, over fresh connections.
func servers(t *testing.T, c *ct.Cluster, n int) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for range n {
		_, body, err := ct.Get(cl, c.URL("/pid"))
		if err != nil {
			t.Fatalf("GET /pid: %v", err)
		}
		seen[body] = true
	}
	return seen
}

func waitMsg(t *testing.T, c *ct.Cluster, after int, prefix string, d time.Duration) int {
	t.Helper()
	_, at, err := c.WaitLog(d, after, ct.Msg(prefix))
	if err != nil {
		t.Fatalf("waiting for %q: %v", prefix, err)
	}
	return at
}

func loads(c *ct.Cluster) []*ct.Load {
	return []*ct.Load{
		ct.StartLoad(c.URL("/"), 6, true, 2*time.Minute),
		ct.StartLoad(c.URL("/"), 3, false, 2*time.Minute),
	}
}

func stopLoads(t *testing.T, ls []*ct.Load) {
	t.Helper()
	var ok, failed int64
	for _, l := range ls {
		l.Stop()
		ok += l.OK.Load()
		failed += l.Failed.Load()
		if l.Failed.Load() > 0 {
			t.Errorf("failures:\n%s", l.Errors())
		}
	}
	if ok == 0 {
		t.Errorf("no request succeeded")
	}
	t.Logf("served %d, failed %d", ok, failed)
}

// reloads sends n HUPs, each after 300ms of load and once the previous
// reload completed, then lets the load run 300ms more.
func reloads(t *testing.T, c *ct.Cluster, n int) {
	t.Helper()
	path := controlPath(t, c)
	gen := status(t, path).Generation
	for i := range n {
		time.Sleep(300 * time.Millisecond)
		c.Signal(syscall.SIGHUP)
		gen++
		waitStatus(t, path, 60*time.Second, fmt.Sprintf("reloaded to generation %d", gen),
			func(st *ctlsock.Status) bool { return reloadedTo(st, gen) })
		t.Logf("reload %d complete", i+1)
	}
	time.Sleep(300 * time.Millisecond)
}

func TestReloadUnderLoadDropsNothing(t *testing.T) {
	c := startOps(t)
	before := servers(t, c, 50)
	ls := loads(c)
	reloads(t, c, 3)
	stopLoads(t, ls)
	after := servers(t, c, 50)
	for s := range after {
		if before[s] {
			t.Errorf("worker %q from before the reloads still serves", s)
		}
		if !strings.HasSuffix(s, " 4") {
			t.Errorf("worker %q is not of generation 4", s)
		}
	}
	if strings.Contains(c.Messages(), "exited unexpectedly") {
		t.Errorf("a child died during the reloads")
	}
}

// A reload replaces the agent too. Calls to it never fail on that account:
// the old agent answers every call it was sent before the master stopped
// sending to it, and calls made while no agent is there wait for the new one.
func TestReloadFailsNoCallToTheAgent(t *testing.T) {
	c := startOps(t)
	ls := []*ct.Load{
		ct.StartLoad(c.URL("/visit"), 8, true, 2*time.Minute),
		ct.StartLoad(c.URL("/"), 2, true, 2*time.Minute),
	}
	reloads(t, c, 3)
	stopLoads(t, ls)
	if got := strings.Count(c.Messages(), "agent stopping: holding messages for the next one"); got != 3 {
		t.Errorf("the agent was drained %d times, want 3 (once a reload)", got)
	}
}

// While a stopping agent waits for its jobs to end, it still answers
// calls: only after that does the master hold them for the next agent.
func TestStoppingAgentAnswersWhileItsJobsEnd(t *testing.T) {
	c := startOps(t, "BROOD_TEST_SLOW_JOB_STOP=1")
	cl := &http.Client{Timeout: 10 * time.Second}
	visit := func() (agentPID string) {
		t.Helper()
		resp, err := cl.Post(c.URL("/visit"), "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("POST /visit: %d %s", resp.StatusCode, b)
		}
		_, pid, _ := strings.Cut(string(b), " ")
		return pid
	}
	at := waitMsg(t, c, 0, "job starting", 30*time.Second)
	old := visit()
	c.Signal(syscall.SIGHUP)
	// The workers are replaced first; then the agent is told to stop and
	// its job takes 3s to end.
	waitMsg(t, c, at, "job winding down", 60*time.Second)
	for range 5 {
		if got := visit(); got != old {
			t.Fatalf("a call while the old agent's job winds down was answered by agent %s, want the old agent %s", got, old)
		}
	}
	waitReloaded(t, c, 2)
	if got := visit(); got == old {
		t.Errorf("after the reload the old agent %s still answers", old)
	}
}

// wsConn opens /ws (query q) and reads the greeting: the serving pid.
func wsConn(t *testing.T, c *ct.Cluster, q string) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	conn, err := net.Dial("tcp", c.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	fmt.Fprintf(conn, "GET /ws%s HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n", q)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	hello, err := br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return conn, br, strings.TrimSpace(strings.TrimPrefix(hello, "hello "))
}

func echo(t *testing.T, conn net.Conn, br *bufio.Reader, line string) (string, error) {
	t.Helper()
	if _, err := fmt.Fprintln(conn, line); err != nil {
		return "", err
	}
	got, err := br.ReadString('\n')
	return strings.TrimSpace(got), err
}

// A reload leaves hijacked connections (WebSockets) to their handlers: the
// worker being replaced tells them it is draining (app.Draining) and waits
// for them, up to the shutdown timeout, before it exits.
func TestReloadLeavesHijackedConnectionsToTheirHandlers(t *testing.T) {
	c := startOps(t)
	polite, politeR, _ := wsConn(t, c, "")
	stubborn, stubbornR, oldPID := wsConn(t, c, "?stubborn=1")
	if got, err := echo(t, stubborn, stubbornR, "ping"); got != "ping" || err != nil {
		t.Fatalf("echo before the reload: %q, %v", got, err)
	}
	c.Signal(syscall.SIGHUP)
	waitReloaded(t, c, 2)

	// The polite handler was told and said goodbye.
	if got, err := politeR.ReadString('\n'); got != "bye\n" {
		t.Errorf("polite connection got %q, %v at the reload; want bye", got, err)
	}
	polite.Close()
	// The stubborn one still has its worker, after the reload completed.
	time.Sleep(500 * time.Millisecond)
	if got, err := echo(t, stubborn, stubbornR, "still there?"); got != "still there?" || err != nil {
		t.Fatalf("hijacked connection after the reload: %q, %v; want its worker to keep serving it", got, err)
	}
	pid, _ := strconv.Atoi(oldPID)
	if !ct.Alive(pid) {
		t.Fatalf("the old worker %d exited under a hijacked connection", pid)
	}
	// Once the client leaves, the old worker finishes stopping.
	stubborn.Close()
	if !exits(pid, 10*time.Second) {
		t.Errorf("the old worker %d did not exit after its last hijacked connection closed", pid)
	}
}

// exits waits up to d for pid to be gone.
func exits(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for ct.Alive(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	return !ct.Alive(pid)
}

// A hijacked connection whose handler ignores Draining holds its worker
// only until the shutdown timeout.
func TestHijackedConnectionsEndAtTheShutdownTimeout(t *testing.T) {
	c := startOps(t, "BROOD_SHUTDOWN_TIMEOUT=1s")
	_, _, oldPID := wsConn(t, c, "?stubborn=1")
	pid, _ := strconv.Atoi(oldPID)
	at := c.Lines()
	c.Signal(syscall.SIGHUP)
	waitReloaded(t, c, 2)
	waitMsg(t, c, at, "hijacked connections still open at the shutdown timeout", 20*time.Second)
	if !exits(pid, 10*time.Second) {
		t.Errorf("the old worker %d still runs after its shutdown timeout", pid)
	}
}

func TestFailedReloadKeepsTheOldWorkers(t *testing.T) {
	for _, tt := range []struct{ name, slot string }{{"first slot fails", ""}, {"second slot fails", "2"}} {
		t.Run(tt.name, func(t *testing.T) {
			flag := t.TempDir() + "/fail"
			c := startOps(t, "BROOD_TEST_FAIL_FLAG="+flag, "BROOD_TEST_FAIL_SLOT="+tt.slot)
			if err := os.WriteFile(flag, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			ls := loads(c)
			time.Sleep(200 * time.Millisecond)
			c.Signal(syscall.SIGHUP)
			waitMsg(t, c, 0, "reload failed", 60*time.Second)
			waitMsg(t, c, 0, "reload rolled back", 60*time.Second)
			time.Sleep(200 * time.Millisecond)
			stopLoads(t, ls)
			for s := range servers(t, c, 50) {
				if !strings.HasSuffix(s, " 1") {
					t.Errorf("worker %q is not of the old generation", s)
				}
			}
			// The cluster is still whole and can be reloaded once fixed.
			os.Remove(flag)
			c.Signal(syscall.SIGHUP)
			waitReloaded(t, c, 2) // the failed generation's number, again
		})
	}
}

func TestScaleUpAndDownUnderLoad(t *testing.T) {
	c := startOps(t)
	path := controlPath(t, c)
	// scaled waits until the master has finished scaling to n workers.
	scaled := func(n int) {
		t.Helper()
		waitStatus(t, path, 30*time.Second, fmt.Sprintf("scaled to %d", n), func(st *ctlsock.Status) bool {
			return st.Workers == n && st.Processes[0].State == "running"
		})
	}
	ls := loads(c)
	for n := 3; n <= 4; n++ {
		c.Signal(syscall.SIGTTIN)
		scaled(n)
	}
	if seen := servers(t, c, 200); len(seen) != 4 {
		t.Errorf("after scaling to 4, %d workers answer: %v", len(seen), seen)
	}
	for n := 3; n >= 1; n-- {
		c.Signal(syscall.SIGTTOU)
		scaled(n)
	}
	// Let the retired workers finish draining under load.
	time.Sleep(time.Second)
	stopLoads(t, ls)
	if seen := servers(t, c, 50); len(seen) != 1 {
		t.Errorf("after scaling to 1, %d workers answer: %v", len(seen), seen)
	}
	// Retired workers drain (their keep-alive clients get a last response)
	// before they exit.
	deadline := time.Now().Add(20 * time.Second)
	for len(c.Children()) != 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(c.Children()); n != 2 {
		t.Errorf("after scaling to 1, the master has %d children; want the agent and one worker", n)
	}
	// And back up: the retired sockets are served again by their own slot.
	c.Signal(syscall.SIGTTIN)
	scaled(2)
	// The worker that held the socket drains before it exits.
	time.Sleep(time.Second)
	if seen := servers(t, c, 100); len(seen) != 2 {
		t.Errorf("after scaling back to 2, %d workers answer: %v", len(seen), seen)
	}
}

func TestHungWorkerIsReplaced(t *testing.T) {
	c := startOps(t, "BROOD_HANG_TIMEOUT=1s")
	go http.Get(c.URL("/hang")) // freezes whichever worker takes it
	at := waitMsg(t, c, 0, "hung: no progress", 30*time.Second)
	waitMsg(t, c, at, "replacement ready", 30*time.Second)
	// Every worker answers again.
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for range 50 {
		if st, _, err := ct.Get(cl, c.URL("/")); err != nil || st != 200 {
			t.Fatalf("after the hung worker was replaced: %d %v", st, err)
		}
	}
}

func TestIdleWorkersAreNotHung(t *testing.T) {
	c := startOps(t, "BROOD_HANG_TIMEOUT=300ms")
	time.Sleep(2 * time.Second)
	if strings.Contains(c.Messages(), "hung") {
		t.Errorf("an idle worker was taken for hung:\n%s", c.Messages())
	}
}

func TestRecycleAfterMaxRequests(t *testing.T) {
	c := startOps(t, "BROOD_MAX_REQUESTS=100", "BROOD_MAX_REQUESTS_JITTER=20")
	before := servers(t, c, 20)
	ls := loads(c)
	waitMsg(t, c, 0, "replacement ready", 30*time.Second)
	stopLoads(t, ls)
	if !strings.Contains(c.Output(), "requests (max requests)") {
		t.Errorf("no recycle reason logged")
	}
	// Not every worker need have recycled yet, but one has.
	fresh := 0
	for s := range servers(t, c, 50) {
		if !before[s] {
			fresh++
		}
	}
	if fresh == 0 {
		t.Errorf("every worker answering is one from before the recycling")
	}
}

// A rollback after a deploy replaced the binary must start the previous
// generation from the file the master kept open, not from the path.
func TestRollbackAfterTheBinaryWasReplaced(t *testing.T) {
	dir := t.TempDir()
	exe := dir + "/app"
	copyFile(t, os.Args[0], exe)
	flag := dir + "/fail"
	c := ct.StartExe(t, exe, "ops", local, "BROOD_WORKERS=2", "BROOD_SHUTDOWN_TIMEOUT=10s",
		"BROOD_TEST_FAIL_FLAG="+flag, "BROOD_TEST_FAIL_SLOT=2")
	c.WaitReady(30 * time.Second)
	// The deploy: a new file moved over the path (a new inode), whose
	// second worker will not start.
	copyFile(t, os.Args[0], exe+".new")
	if err := os.Rename(exe+".new", exe); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ls := loads(c)
	time.Sleep(200 * time.Millisecond)
	c.Signal(syscall.SIGHUP)
	waitMsg(t, c, 0, "reload rolled back", 60*time.Second)
	time.Sleep(200 * time.Millisecond)
	stopLoads(t, ls)
	seen := servers(t, c, 50)
	if len(seen) != 2 {
		t.Errorf("%d workers answer after the rollback, want 2: %v", len(seen), seen)
	}
	for s := range seen {
		if !strings.HasSuffix(s, " 1") {
			t.Errorf("worker %q is not of the old generation", s)
		}
	}
	// The answering workers run the binary the deploy unlinked from the
	// path (the replaced successor of slot 1 may still be draining).
	for s := range seen {
		var pid int
		fmt.Sscan(s, &pid)
		if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); !strings.HasSuffix(target, "(deleted)") {
			t.Errorf("worker %d runs %q, want the replaced (deleted) binary of generation 1", pid, target)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o755); err != nil {
		t.Fatal(err)
	}
}
