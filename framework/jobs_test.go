package framework

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/broodhq/brood/agent"
	ct "github.com/broodhq/brood/internal/clustertest"
)

func init() {
	testApps["agent-jobs"] = func() error {
		dir := os.Getenv("BROOD_TEST_DIR")
		return Run(testRouter(), withRestartMin(20*time.Millisecond), WithAgent(func(a *agent.Agent) error {
			a.Every(100*time.Millisecond, "tick", func(ctx context.Context) error {
				return appendLine(filepath.Join(dir, "tick"), strconv.Itoa(os.Getpid()))
			})
			a.Every(100*time.Millisecond, "boom", func(ctx context.Context) error {
				panic("boom")
			})
			a.Every(200*time.Millisecond, "slow", func(ctx context.Context) error {
				// Ignores ctx on purpose: stopping must wait for it anyway.
				_ = appendLine(filepath.Join(dir, "slow"), "start")
				time.Sleep(time.Second)
				return appendLine(filepath.Join(dir, "slow"), "done")
			})
			return nil
		}))
	}
	testApps["agent-bad-every"] = func() error {
		return Run(testRouter(), WithAgent(func(a *agent.Agent) error {
			a.Every(0, "flush", func(context.Context) error { return nil })
			return nil
		}))
	}
}

// appendLine appends one line with one write(2), so that readers never see
// half of it.
func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(line + "\n")
	return err
}

func readLines(path string) []string {
	b, _ := os.ReadFile(path)
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// waitLines waits until path holds at least n lines that match.
func waitLines(t *testing.T, path string, n int, match func(string) bool) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var got []string
		for _, l := range readLines(path) {
			if match(l) {
				got = append(got, l)
			}
		}
		if len(got) >= n {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: fewer than %d matching lines within 20s: %q", path, n, readLines(path))
	return nil
}

func TestAgentJobsSurvivePanicsAndResumeInANewAgent(t *testing.T) {
	dir := t.TempDir()
	c := ct.Start(t, "agent-jobs", local, "BROOD_WORKERS=2", "BROOD_TEST_DIR="+dir)
	c.WaitReady(30 * time.Second)

	ticks := waitLines(t, filepath.Join(dir, "tick"), 3, func(string) bool { return true })
	first, _ := strconv.Atoi(ticks[0])
	// The panicking job has panicked more than once and the agent is the
	// same process: panics neither kill the agent nor unschedule the job.
	if _, at, err := c.WaitLog(10*time.Second, 0, func(m map[string]any) bool {
		return m["msg"] == "job panicked" && m["job"] == "boom"
	}); err != nil {
		t.Fatal(err)
	} else if _, _, err := c.WaitLog(10*time.Second, at+1, func(m map[string]any) bool {
		return m["msg"] == "job panicked" && m["job"] == "boom"
	}); err != nil {
		t.Fatalf("the panicking job did not run again: %v", err)
	}
	if !ct.Alive(first) {
		t.Fatal("the agent died of a job's panic")
	}

	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitLines(t, filepath.Join(dir, "tick"), 3, func(l string) bool {
		pid, _ := strconv.Atoi(l)
		return pid != first
	})
	if _, _, err := c.WaitLog(time.Second, 0, ct.Msg("exited unexpectedly; restarting")); err != nil {
		t.Errorf("the master did not report the agent's death: %v", err)
	}
}

func TestAgentStopWaitsForRunningJobs(t *testing.T) {
	dir := t.TempDir()
	c := ct.Start(t, "agent-jobs", local, "BROOD_WORKERS=1", "BROOD_TEST_DIR="+dir)
	c.WaitReady(30 * time.Second)
	slow := filepath.Join(dir, "slow")
	waitLines(t, slow, 1, func(l string) bool { return l == "start" })
	stopCluster(t, c)
	lines := readLines(slow)
	if len(lines) == 0 || lines[len(lines)-1] != "done" {
		t.Errorf("slow job's lines %q: want the run under way at SIGTERM to finish (last line done)", lines)
	}
}

func TestAgentEveryMisuseRefusesToStart(t *testing.T) {
	c := ct.Start(t, "agent-bad-every", local, "BROOD_WORKERS=1")
	exitsFailing(t, c, 20*time.Second)
	want := `agent failed to start: agent: WithAgent hook: panic: agent.Every: schedule "flush": invalid schedule`
	if !strings.Contains(c.Messages(), want) {
		t.Errorf("output does not say %q:\n%s", want, c.Output())
	}
}
