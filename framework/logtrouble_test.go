package framework

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	ct "github.com/broodhq/brood/internal/clustertest"
	ctlsock "github.com/broodhq/brood/internal/control"
	"github.com/broodhq/brood/internal/proclog"
)

// waitFile waits up to d for the file at path to contain want.
func waitFile(path, want string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), want) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// Deleting the log directory must not take capacity down: a worker that
// starts meanwhile serves (it recreates the directory, or writes to stderr
// when it cannot), and the processes that had the deleted files open write
// to the recreated ones soon after, instead of into files nobody can read.
func TestDeletedLogDirectoryStopsNoWorker(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	c := ct.Start(t, "logs", local, "BROOD_WORKERS=2", "BROOD_LOG_DIR="+dir)
	c.WaitReady(30 * time.Second)
	workers := servers(t, c, 40)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	var victim int
	for s := range workers {
		victim, _ = strconv.Atoi(strings.Fields(s)[0])
		break
	}
	at := c.Lines()
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitMsg(t, c, at, "exited unexpectedly", 10*time.Second)
	// Both slots answer again, the replacement among them.
	deadline := time.Now().Add(20 * time.Second)
	for {
		seen := servers(t, c, 40)
		if len(seen) == 2 && !seen[victimKey(workers, victim)] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after deleting the log directory and killing worker %d, the workers answering are %v; want 2 others", victim, seen)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// A process notices within a second (logfile.Options.CheckEvery) that
	// its file is gone; what it wrote before went to the deleted file.
	time.Sleep(1500 * time.Millisecond)
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	pids := map[string]bool{}
	for i := range 40 {
		_, body, err := ct.Get(cl, c.URL("/pid?id=after-delete-"+strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		pids[body] = true
	}
	access := filepath.Join(dir, proclog.AccessLogName)
	for s := range pids {
		if !waitFile(access, `"pid":`+strings.Fields(s)[0]+`,"method":"GET","path":"/pid?id=after-delete-`, 10*time.Second) {
			t.Errorf("worker %q wrote no access line to the recreated %s", s, access)
		}
	}
	if strings.Contains(c.Messages(), "giving up") {
		t.Errorf("a slot was given up")
	}
}

func victimKey(workers map[string]bool, pid int) string {
	for s := range workers {
		if strings.HasPrefix(s, strconv.Itoa(pid)+" ") {
			return s
		}
	}
	return ""
}

// A reopen round in which processes could not reopen their files must say
// so, naming them, rather than that every process reopened.
func TestReopenLogsReportsWhoFailed(t *testing.T) {
	dir := t.TempDir()
	c := ct.Start(t, "logs", local, "BROOD_WORKERS=1", "BROOD_LOG_DIR="+dir)
	c.WaitReady(30 * time.Second)
	// A directory where app.log was: nobody can open it.
	app := filepath.Join(dir, proclog.AppLogName)
	if err := os.Remove(app); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(app, 0o755); err != nil {
		t.Fatal(err)
	}
	at := c.Lines()
	c.Signal(syscall.SIGUSR1)
	rec, _, err := c.WaitLog(20*time.Second, at, func(r map[string]any) bool {
		msg, _ := r["msg"].(string)
		return strings.HasPrefix(msg, "log files reopened") || strings.HasPrefix(msg, "log files: ")
	})
	if err != nil {
		t.Fatal(err)
	}
	failed := fmt.Sprint(rec["failed"])
	if rec["level"] != "WARN" || !strings.Contains(failed, "master") || !strings.Contains(failed, "worker 1") || !strings.Contains(failed, "agent") {
		t.Errorf("got %v %q failed=%s; want a warning naming the master, the agent and worker 1", rec["level"], rec["msg"], failed)
	}

	// broodctl reopen-logs answers with what happened.
	sock, _, err := c.WaitLog(time.Second, 0, ct.Msg("control socket"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := ctlsock.Do(ctx, sock["path"].(string), ctlsock.Request{Cmd: ctlsock.CmdReopenLogs})
	if err != nil {
		t.Fatal(err)
	}
	if resp.OK || !strings.Contains(resp.Error, "could not reopen") || !strings.Contains(resp.Error, "worker 1") {
		t.Errorf("reopen-logs answered %+v; want a failure naming worker 1", resp)
	}
}

// Access lines that cannot be written (a full disk: here /dev/full) are
// counted and reported, once at first and then as they resume, and
// serving goes on.
func TestFullDiskDropsAccessLinesCounted(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	dir := t.TempDir()
	access := filepath.Join(dir, proclog.AccessLogName)
	if err := os.Symlink("/dev/full", access); err != nil {
		t.Fatal(err)
	}
	c := ct.Start(t, "logs", local, "BROOD_WORKERS=1", "BROOD_LOG_DIR="+dir)
	c.WaitReady(30 * time.Second)
	cl := ct.Client(5 * time.Second)
	for i := range 50 {
		if _, _, err := ct.Get(cl, c.URL("/?id="+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	waitMsg(t, c, 0, "cannot write to the log file", 10*time.Second)
	if err := os.Remove(access); err != nil { // room on the disk again
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // logfile.Options.CheckEvery
	if _, _, err := ct.Get(cl, c.URL("/?id=resumed")); err != nil {
		t.Fatal(err)
	}
	rec, _, err := c.WaitLog(10*time.Second, 0, ct.Msg("log file writable again"))
	if err != nil {
		t.Fatal(err)
	}
	// The 50 requests' lines, and whatever the readiness checks logged.
	if lost, _ := rec["lost_lines"].(float64); lost < 50 {
		t.Errorf("lost_lines %v, want at least 50", rec["lost_lines"])
	}
	if got := strings.Count(c.Messages(), "cannot write to the log file"); got != 1 {
		t.Errorf("the loss was reported %d times at its start, want once", got)
	}
	if !waitFile(access, "id=resumed", 5*time.Second) {
		t.Errorf("no access line after the disk had room again")
	}
}
