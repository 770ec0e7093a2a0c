package framework

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/broodhq/brood/app"
	ct "github.com/broodhq/brood/internal/clustertest"
	ctlsock "github.com/broodhq/brood/internal/control"
	"github.com/broodhq/brood/internal/protocol"
)

// Real-process tests of issue 11's supervisor faults (items 1, 4, 8, 12);
// internal/master's in-process tests cover the same decisions through the
// Starter seam.

func init() {
	// slow-successor: with BROOD_TEST_SLOW_BOOT set, a worker of a reloaded
	// generation, or of a slot a scale-up added, takes 1s in its hook, so
	// that a stop can come while it starts.
	testApps["slow-successor"] = func() error {
		return Run(procsRouter(), WithApp(func(a *app.App) error {
			if os.Getenv("BROOD_TEST_SLOW_BOOT") != "" && (os.Getenv(protocol.EnvGeneration) != "1" || a.Slot() > 2) {
				time.Sleep(time.Second)
			}
			return nil
		}))
	}
}

// procsRouter answers /procs with the worker's pid, slot and GOMAXPROCS.
func procsRouter() http.Handler {
	r := chi.NewRouter()
	r.Get("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "Hello, World!") })
	r.Get("/procs", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%d %d %d", os.Getpid(), app.FromContext(r.Context()).Slot(), runtime.GOMAXPROCS(0))
	})
	return r
}

// Item 1: TERM while a reload's successor (or a scale-up's new worker) is
// starting used to leave the agent and the master running forever.
func TestStopDuringReloadOrScaleUpEndsTheMaster(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGTTIN} {
		t.Run(sig.String(), func(t *testing.T) {
			c := startBasicApp(t, "slow-successor", "BROOD_TEST_SLOW_BOOT=1", "BROOD_SHUTDOWN_TIMEOUT=5s")
			c.Signal(sig)
			// The successor or the new worker is in its slow hook.
			time.Sleep(300 * time.Millisecond)
			c.Signal(syscall.SIGTERM)
			exitsCleanly(t, c, 20*time.Second)
			if n := len(c.Children()); n != 0 {
				t.Errorf("%d children left after the master exited", n)
			}
		})
	}
}

// status asks the master's control socket.
func status(t *testing.T, path string) *ctlsock.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := ctlsock.Do(ctx, path, ctlsock.Request{Cmd: ctlsock.CmdStatus})
	if err != nil || r.Status == nil {
		t.Fatalf("status: %v %+v", err, r)
	}
	return r.Status
}

func scale(t *testing.T, path string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if r, err := ctlsock.Do(ctx, path, ctlsock.Request{Cmd: ctlsock.CmdScale, N: n}); err != nil || r.Err() != nil {
		t.Fatalf("scale %d: %v %v", n, err, r.Err())
	}
}

// workerPIDs counts the worker processes status lists.
func workerPIDs(st *ctlsock.Status) int {
	n := 0
	for _, p := range st.Processes {
		if p.Role == "worker" && p.PID != 0 {
			n++
		}
	}
	return n
}

// waitWorkers waits until status says want workers, and that many run.
func waitWorkers(t *testing.T, path string, want int, d time.Duration) *ctlsock.Status {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		st := status(t, path)
		if st.Workers == want && workerPIDs(st) == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("status says %d workers with %d processes; want %d and %d", st.Workers, workerPIDs(st), want, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// killWorker SIGKILLs the worker of slot.
func killWorker(t *testing.T, c *ct.Cluster, slot int) {
	t.Helper()
	for _, pid := range c.Children() {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.Contains(string(cmdline), "worker "+strconv.Itoa(slot)) {
			syscall.Kill(pid, syscall.SIGKILL)
			return
		}
	}
	t.Fatalf("no worker %d among %v", slot, c.Children())
}

// Item 4: a worker whose restart cannot exec (the binary briefly not
// executable, as during some deploys) is retried with backoff, and is back
// once exec works again.
func TestFailedExecIsRetried(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "app")
	copyFile(t, os.Args[0], exe)
	sock := filepath.Join(dir, "ctl.sock")
	c := ct.StartExe(t, exe, "slow-successor", local, "BROOD_WORKERS=2", "BROOD_CONTROL_SOCKET="+sock)
	c.WaitReady(30 * time.Second)
	if err := os.Chmod(exe, 0o644); err != nil {
		t.Fatal(err)
	}
	killWorker(t, c, 2)
	if _, _, err := c.WaitLog(10*time.Second, 0, func(r map[string]any) bool {
		s, _ := r["status"].(string)
		e, _ := r["err"].(string)
		return strings.Contains(s+e, "permission denied")
	}); err != nil {
		t.Fatalf("no failed start of worker 2 reported: %v", err)
	}
	// A scale-up whose worker cannot exec is undone: status keeps
	// counting what runs (it said 3 with 2 running before).
	scale(t, sock, 3)
	st := waitStatus(t, sock, 10*time.Second, "scale 3 over", idle)
	if st.Workers != 2 {
		t.Errorf("after a scale-up that could not exec: status says %d workers; want 2", st.Workers)
	}
	if err := os.Chmod(exe, 0o755); err != nil {
		t.Fatal(err)
	}
	// The backoff is at most a few seconds by now.
	waitWorkers(t, sock, 2, 30*time.Second)
}

// Item 8: a given-up slot can be scaled away, and status matches what runs
// before and after.
func TestGivenUpSlotIsScaledAway(t *testing.T) {
	dir := t.TempDir()
	flag := filepath.Join(dir, "crash")
	sock := filepath.Join(dir, "ctl.sock")
	c := startBasicApp(t, "crash-loop", "BROOD_TEST_CRASH_FLAG="+flag, "BROOD_CONTROL_SOCKET="+sock)
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	killWorker(t, c, 2)
	waitStatus(t, sock, 60*time.Second, "slot 2 given up", func(st *ctlsock.Status) bool {
		return slices.ContainsFunc(st.Processes, func(p ctlsock.Process) bool { return p.Slot == 2 && p.State == "given-up" })
	})
	waitWorkers(t, sock, 1, 10*time.Second)
	scale(t, sock, 1)
	st := waitStatus(t, sock, 20*time.Second, "scale 1 over", idle)
	if slices.ContainsFunc(st.Processes, func(p ctlsock.Process) bool { return p.State == "given-up" }) {
		t.Errorf("status after scale 1 still lists a given-up slot: %+v", st.Processes)
	}
	if strings.Contains(c.Messages(), "scale down failed") {
		t.Errorf("scale 1 failed:\n%s", c.Messages())
	}
	os.Remove(flag)
	scale(t, sock, 3)
	waitWorkers(t, sock, 3, 30*time.Second)
}

// Item 12: after 1 → 2 → 1 workers the one left has every CPU again, the
// running workers included.
func TestGOMAXPROCSFollowsTheWorkerCount(t *testing.T) {
	if os.Getenv("GOMAXPROCS") != "" {
		t.Skip("GOMAXPROCS is set: brood leaves it alone")
	}
	cpus := runtimeCPUs()
	if cpus < 2 {
		t.Skip("one CPU: every share is 1")
	}
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	c := ct.Start(t, "slow-successor", local, "BROOD_WORKERS=1", "BROOD_CONTROL_SOCKET="+sock)
	c.WaitReady(30 * time.Second)
	procs := func() map[string]string { // pid → GOMAXPROCS of every answering worker
		out := map[string]string{}
		cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		for range 40 {
			_, body, err := ct.Get(cl, c.URL("/procs"))
			if err != nil {
				t.Fatalf("GET /procs: %v", err)
			}
			f := strings.Fields(body)
			out[f[0]] = f[2]
		}
		return out
	}
	for _, n := range []int{2, 1} {
		scale(t, sock, n)
		waitStatus(t, sock, 30*time.Second, fmt.Sprintf("scaled to %d", n), func(st *ctlsock.Status) bool {
			return st.Workers == n && idle(st)
		})
		time.Sleep(500 * time.Millisecond) // replaced workers drain
		want := strconv.Itoa(max(1, cpus/n))
		for pid, got := range procs() {
			if got != want {
				t.Errorf("with %d workers, worker pid %s has GOMAXPROCS %s; want %s", n, pid, got, want)
			}
		}
	}
}

// controlPath is the control socket the cluster's master listens on, as it
// logged it.
func controlPath(t *testing.T, c *ct.Cluster) string {
	t.Helper()
	rec, _, err := c.WaitLog(10*time.Second, 0, ct.Msg("control socket"))
	if err != nil {
		t.Fatalf("no control socket logged: %v", err)
	}
	path, _ := rec["path"].(string)
	return path
}

// waitStatus polls the master's status until cond holds, and returns it.
func waitStatus(t *testing.T, path string, d time.Duration, what string, cond func(*ctlsock.Status) bool) *ctlsock.Status {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		st := status(t, path)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("status not so within %s: %s: %+v", d, what, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// reloadedTo reports whether st shows a finished reload to generation gen:
// the master is running again and every process not draining runs gen.
func reloadedTo(st *ctlsock.Status, gen int) bool {
	if st.Generation != gen || st.Processes[0].State != "running" {
		return false
	}
	for _, p := range st.Processes[1:] {
		if p.State != "draining" && p.Generation != gen {
			return false
		}
	}
	return true
}

// idle reports whether no reload or scale is in progress.
func idle(st *ctlsock.Status) bool { return st.Processes[0].State == "running" }

// waitReloaded waits until the cluster's status shows a finished reload to
// generation gen.
func waitReloaded(t *testing.T, c *ct.Cluster, gen int) {
	t.Helper()
	waitStatus(t, controlPath(t, c), 60*time.Second, fmt.Sprintf("reloaded to generation %d", gen),
		func(st *ctlsock.Status) bool { return reloadedTo(st, gen) })
}
