package control

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// waitState waits until pid's state in /proc/pid/stat is state.
func waitState(t *testing.T, pid int, state byte) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.LastIndexByte(b, ')'); i > 0 && i+2 < len(b) && b[i+2] == state {
			return
		}
	}
	t.Fatalf("process %d never reached state %c", pid, state)
}

// A client that gave up on a master that was stopped (SIGSTOP) must not
// see the command carried out once the master continues: the client says
// it failed, so it must not have happened.
func TestCommandNotCarriedOutAfterTheClientGaveUp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.sock")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), peerChildEnv+"=record", "CONTROL_TEST_PATH="+path)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { in.Close(); cmd.Process.Signal(syscall.SIGCONT); cmd.Wait() }()
	var mu sync.Mutex
	var seen []string
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "ready" {
				close(ready)
			}
			mu.Lock()
			seen = append(seen, sc.Text())
			mu.Unlock()
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("the master did not start")
	}
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitState(t, cmd.Process.Pid, 'T')
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	_, err := Do(ctx, path, Request{Cmd: CmdReload})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "may have begun") {
		t.Errorf("got %v; want a timeout that says the master may have begun the reload", err)
	}
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// Give it time to read the request, and check afterwards that it still
	// answers and did only what it was asked in time.
	time.Sleep(500 * time.Millisecond)
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if resp, err := Do(ctx, path, Request{Cmd: CmdStatus}); err != nil || !resp.OK {
		t.Fatalf("status after SIGCONT: %+v, %v", resp, err)
	}
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(seen, "|"); got != "ready|handled status" {
		t.Errorf("the master's record: %q; want only the status, not the reload its client gave up on", got)
	}
}
