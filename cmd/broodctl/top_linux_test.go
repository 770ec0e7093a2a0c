//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/broodhq/brood/internal/clustertest"
)

// tmux is a private tmux server (its own socket, -L) with one pane running
// a command; the test reads the pane as a person would see it.
type tmux struct {
	t    *testing.T
	name string
}

func startTmux(t *testing.T, command string) *tmux {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("BROOD_CI_REQUIRE_TOOLS") == "1" {
			t.Fatal("tmux is not installed (apt-get install tmux); BROOD_CI_REQUIRE_TOOLS=1 requires it")
		}
		t.Skip("tmux is not installed (apt-get install tmux)")
	}
	tm := &tmux{t: t, name: fmt.Sprintf("broodtest-%d-%d", os.Getpid(), time.Now().UnixNano())}
	tm.run("-f", "/dev/null", "new-session", "-d", "-x", "200", "-y", "50", command)
	t.Cleanup(func() { exec.Command("tmux", "-L", tm.name, "kill-server").Run() })
	return tm
}

func (tm *tmux) run(args ...string) string {
	tm.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", tm.name}, args...)...).CombinedOutput()
	if err != nil {
		tm.t.Fatalf("tmux %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (tm *tmux) screen() string { return tm.run("capture-pane", "-p") }

// waitScreen waits until ok accepts the screen, and returns it.
func (tm *tmux) waitScreen(what string, timeout time.Duration, ok func(string) bool) string {
	tm.t.Helper()
	deadline := time.Now().Add(timeout)
	var s string
	for time.Now().Before(deadline) {
		if s = tm.screen(); ok(s) {
			return s
		}
		time.Sleep(100 * time.Millisecond)
	}
	tm.t.Fatalf("after %s, no screen with %s; last one:\n%s", timeout, what, s)
	return ""
}

// topRow is one worker line of broodctl top's screen.
type topRow struct {
	slot, pid, gen, restarts int
	state, mark, reason      string
	rate                     float64
}

var rowRE = regexp.MustCompile(`^worker +(\d+) +(\d+) +([↑↓✗] )?(\S+) +(\d+) +(\S+) +\S+ +\S+ +\S+ +(\d+) +(.*?)(  +[▁▂▃▄▅▆▇█]+)? *$`)

func workerRows(screen string) []topRow {
	var rows []topRow
	for _, l := range strings.Split(screen, "\n") {
		m := rowRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		r := topRow{mark: strings.TrimSpace(m[3]), state: m[4], reason: strings.TrimSpace(m[8])}
		r.slot, _ = strconv.Atoi(m[1])
		r.pid, _ = strconv.Atoi(m[2])
		r.gen, _ = strconv.Atoi(m[5])
		r.rate, _ = strconv.ParseFloat(m[6], 64)
		r.restarts, _ = strconv.Atoi(m[7])
		rows = append(rows, r)
	}
	return rows
}

// headLine is the process table's header line on a screen.
func headLine(screen string) string {
	for _, l := range strings.Split(screen, "\n") {
		if strings.HasPrefix(l, "ROLE ") {
			return strings.TrimRight(l, " ")
		}
	}
	return ""
}

// ready returns the ready rows by slot.
func ready(rows []topRow) map[int]topRow {
	out := map[int]topRow{}
	for _, r := range rows {
		if r.state == "ready" && r.mark == "" {
			out[r.slot] = r
		}
	}
	return out
}

// TestTopInTerminal watches a real cluster under light load in broodctl top,
// running in tmux: every worker's row with traffic, a reload slot by slot,
// a killed worker and its restart, and q leaving the terminal as it was.
func TestTopInTerminal(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "ctl.sock")
	c := clustertest.Start(t, "light", "BROOD_WORKERS=3", "BROOD_ADDR=127.0.0.1:0", "BROOD_CONTROL_SOCKET="+sock)
	c.WaitReady(30 * time.Second)
	load := clustertest.StartLoad(c.URL("/"), 4, false, 90*time.Second)
	defer load.Stop()

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A shell around it prints its exit status on the normal screen once
	// the alternate one is gone, then keeps the pane open to be read.
	top := fmt.Sprintf("env %s=1 TERM=xterm-256color %s -socket %s -interval 250ms top; echo top-exited=$?; sleep 60",
		envBeBroodctl, exe, sock)
	tm := startTmux(t, top)

	// Every worker, with traffic.
	tm.waitScreen("3 ready workers, each with requests per second", 30*time.Second, func(s string) bool {
		r := ready(workerRows(s))
		return len(r) == 3 && r[1].rate > 0 && r[2].rate > 0 && r[3].rate > 0 && strings.Contains(s, "workers 3/3 ready")
	})

	// Narrowed to 80 columns (tmux sends SIGWINCH), the view leaves out
	// its less needed columns whole, the key ones first in the table;
	// widened again, it shows them all.
	tm.run("resize-window", "-x", "80")
	tm.waitScreen("the process table fitted to 80 columns", 10*time.Second, func(s string) bool {
		head := headLine(s)
		heads := regexp.MustCompile(`\S+( \S+)*`).FindAllString(head, -1)
		for _, h := range heads {
			if !slices.Contains(header, h) {
				return false // cut
			}
		}
		// The columns' widths follow the values (the pids' digits), so
		// only their order is checked.
		return len(heads) > 4 && slices.Equal(heads[:4], []string{"ROLE", "SLOT", "PID", "STATE"}) &&
			slices.Contains(heads, "REQ/S") && slices.Contains(heads, "RSS") && !slices.Contains(heads, "QUEUE")
	})
	tm.run("resize-window", "-x", "200")
	tm.waitScreen("every column again at 200 columns", 10*time.Second, func(s string) bool {
		head := headLine(s)
		return strings.Contains(head, "QUEUE") && strings.HasSuffix(head, "LAST MINUTE")
	})

	// A reload, followed slot by slot: the header says how far it got,
	// and a screen shows both generations.
	if code, _, errs := runCtl("-socket", sock, "reload"); code != 0 {
		t.Fatalf("reload: exit %d: %s", code, errs)
	}
	var sawProgress, sawBoth, sawStarting bool
	tm.waitScreen("every worker of generation 2", 60*time.Second, func(s string) bool {
		if regexp.MustCompile(`reload [1-4]/4`).MatchString(s) {
			sawProgress = true
		}
		gens := map[int]bool{}
		for _, r := range workerRows(s) {
			gens[r.gen] = true
		}
		if gens[1] && gens[2] {
			sawBoth = true
		}
		if strings.Contains(s, "↑ starting") {
			sawStarting = true
		}
		r := ready(workerRows(s))
		return len(r) == 3 && r[1].gen == 2 && r[2].gen == 2 && r[3].gen == 2
	})
	if !sawProgress || !sawBoth || !sawStarting {
		t.Errorf("during the reload: saw the progress in the header %v, both generations at once %v, a worker starting %v; want all", sawProgress, sawBoth, sawStarting)
	}

	// A worker killed outright: its exit stays visible, and its slot
	// restarts with a new pid, a restart counted and the reason.
	victim := ready(workerRows(tm.screen()))[2]
	if victim.pid == 0 {
		t.Fatal("no ready worker 2 on the screen")
	}
	if err := syscall.Kill(victim.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s := tm.waitScreen("worker 2 restarted after the kill", 30*time.Second, func(s string) bool {
		r := ready(workerRows(s))[2]
		return r.pid != 0 && r.pid != victim.pid && r.restarts == victim.restarts+1 && strings.Contains(r.reason, "killed")
	})
	t.Logf("screen after the kill:\n%s", s)

	// q leaves the alternate screen: the shell's line shows, top's do not.
	tm.run("send-keys", "q")
	s = tm.waitScreen("top exited", 10*time.Second, func(s string) bool { return strings.Contains(s, "top-exited=") })
	if !strings.Contains(s, "top-exited=0") || strings.Contains(s, "brood top") {
		t.Errorf("after q: want exit 0 and the terminal as it was; got:\n%s", s)
	}
	if alt := strings.TrimSpace(tm.run("display-message", "-p", "#{alternate_on}")); alt != "0" {
		t.Errorf("after q, the alternate screen is on (%s)", alt)
	}

	// Watching again, then the master stops: top says so and fails.
	tm = startTmux(t, top)
	tm.waitScreen("the view", 30*time.Second, func(s string) bool { return strings.Contains(s, "workers 3/3 ready") })
	c.Signal(syscall.SIGTERM)
	s = tm.waitScreen("top exited", 60*time.Second, func(s string) bool { return strings.Contains(s, "top-exited=") })
	if !strings.Contains(s, "top-exited=1") || !strings.Contains(s, "broodctl top: the master went away") {
		t.Errorf("after the master stopped: want exit 1 and that the master went away; got:\n%s", s)
	}
}
