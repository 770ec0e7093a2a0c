//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/broodhq/brood/internal/clustertest"
	"github.com/broodhq/brood/internal/control"
)

var started = time.Date(2025, 1, 2, 10, 0, 0, 0, time.UTC)

func testStatus() *control.Status {
	return &control.Status{
		App: "hello", Addr: "[::]:8080", Started: started, Generation: 2, Workers: 2,
		Processes: []control.Process{
			{Role: "master", PID: 4100, State: "ready", Started: started, RSS: 12_900_000, Generation: 2},
			{Role: "agent", PID: 4101, State: "ready", Started: started.Add(time.Second), Restarts: 1, RSS: 800, Generation: 2},
			{Role: "worker", Slot: 1, PID: 4102, State: "ready", Started: started.Add(57*time.Minute + 48*time.Second), Requests: 123456, RSS: 21 << 20, Generation: 2, Queued: 3},
			{Role: "worker", Slot: 2, PID: 4099, State: "draining", Started: started, Restarts: 3, Generation: 1},
		},
		Jobs: json.RawMessage(`[{"name":"rotate"},{"name":"cleanup"}]`),
	}
}

func TestWriteStatus(t *testing.T) {
	var b bytes.Buffer
	if err := writeStatus(&b, testStatus(), started.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	want := `app hello  addr [::]:8080  generation 2  workers 2  up 1h00m
ROLE    SLOT  PID   STATE     UPTIME  RESTARTS  REQUESTS  RSS      GEN  QUEUED
master  -     4100  ready     1h00m   0         -         12.3MiB  2    -
agent   -     4101  ready     59m59s  1         -         800B     2    -
worker  1     4102  ready     2m12s   0         123456    21.0MiB  2    3
worker  2     4099  draining  1h00m   3         0         -        1    -
balance: busiest slot 2.00× the mean over 2 slots (123456 requests)
2 agent jobs (-json shows them)
`
	if got := b.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestWriteStatusOperation(t *testing.T) {
	st := testStatus()
	st.Operation = "reload 2/4"
	var b bytes.Buffer
	if err := writeStatus(&b, st, started.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if first, _, _ := strings.Cut(b.String(), "\n"); first != "app hello  addr [::]:8080  generation 2  workers 2  up 1h00m  reload 2/4" {
		t.Errorf("header: got %q", first)
	}
}

func TestUnits(t *testing.T) {
	day := 24 * time.Hour
	for d, want := range map[time.Duration]string{
		0: "0s", 45 * time.Second: "45s", 3*time.Minute + 12*time.Second: "3m12s",
		5*time.Hour + 7*time.Minute: "5h07m", 12*day + 3*time.Hour + 59*time.Minute: "12d3h",
		-time.Minute: "0s",
	} {
		if got := uptime(started, started.Add(d)); got != want {
			t.Errorf("uptime(%v): got %s, want %s", d, got, want)
		}
	}
	if got := uptime(time.Time{}, started); got != "-" {
		t.Errorf("uptime of an unknown start: got %s, want -", got)
	}
	for n, want := range map[int64]string{
		0: "-", 1: "1B", 1023: "1023B", 1024: "1.0KiB", 1536: "1.5KiB",
		1024*1024 - 1: "1.0MiB", 12_900_000: "12.3MiB", 3 << 30: "3.0GiB", 5 << 40: "5.0TiB",
	} {
		if got := size(n); got != want {
			t.Errorf("size(%d): got %s, want %s", n, got, want)
		}
	}
}

// fake is a master that records requests and answers from a table.
type fake struct {
	mu   sync.Mutex
	reqs []control.Request
}

func (f *fake) handle(_ context.Context, req control.Request) control.Response {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	switch req.Cmd {
	case control.CmdStatus:
		return control.Response{OK: true, Status: testStatus()}
	case control.CmdScale:
		if req.N > 16 {
			return control.Fail("scale: at most 16 workers, got %d", req.N)
		}
		return control.Response{OK: true, Message: "scaling to 3 workers"}
	case control.CmdStop:
		return control.Response{OK: true}
	}
	return control.Response{OK: true, Message: req.Cmd + " started"}
}

func serve(t *testing.T, path string) *fake {
	t.Helper()
	f := &fake{}
	s, err := control.Listen(path, f.handle, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return f
}

func runCtl(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// isolate points the default directory at an empty private one.
func isolate(t *testing.T) string {
	t.Helper()
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	t.Setenv("TMPDIR", t.TempDir()) // where the fallback directories are
	t.Setenv(control.EnvSocket, "")
	return control.DefaultDir()
}

// forge answers every request on path with a forged status, as a socket
// someone else planted would.
func forge(t *testing.T, path string) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(`{"ok":true,"message":"forged","status":{"app":"forged","processes":[{"role":"master","pid":1}]}}` + "\n"))
			c.Close()
		}
	}()
}

// A default directory that is not safe (here: others may write it, as a
// squatter's would be) is skipped, forged socket and all, and the master
// that went to a private directory instead is found.
func TestSquattedDefaultDirIgnored(t *testing.T) {
	isolate(t)
	t.Setenv("XDG_RUNTIME_DIR", "")
	squatted := control.DefaultDir()
	if err := os.Mkdir(squatted, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(squatted, 0o777); err != nil {
		t.Fatal(err)
	}
	path, err := control.DefaultPath("hello", 8080)
	if err != nil {
		t.Fatal(err)
	}
	forge(t, path)
	forge(t, filepath.Join(squatted, "other-1.sock"))
	f := &fake{}
	s, err := control.Listen(path, f.handle, nil) // goes elsewhere: path is taken, and unsafe
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, args := range [][]string{{"status"}, {"-app", "hello", "-port", "8080", "status"}, {"-app", "hello", "status"}} {
		code, out, errs := runCtl(args...)
		if code != 0 || strings.Contains(out, "forged") || !strings.Contains(out, "app hello") {
			t.Errorf("%q: got exit %d, %q, %q; want the real master's status", args, code, out, errs)
		}
		if !strings.Contains(errs, "ignoring "+squatted) {
			t.Errorf("%q: stderr %q; want a note that %s is ignored", args, errs, squatted)
		}
	}
	if code, out, errs := runCtl("-socket", path, "stop"); code != 1 || strings.Contains(out, "forged") || !strings.Contains(errs, "writable by others") {
		t.Errorf("stop through the squatted directory: got exit %d, %q, %q; want a refusal", code, out, errs)
	}
}

func TestCommands(t *testing.T) {
	isolate(t)
	path := filepath.Join(t.TempDir(), "ctl.sock")
	f := serve(t, path)

	tests := []struct {
		args       []string
		code       int
		out, err   string
		wantSocket bool
	}{
		{args: []string{"-socket", path, "status"}, out: "ROLE    SLOT  PID"},
		{args: []string{"status", "--json", "-socket", path}, out: `"processes": [`},
		{args: []string{"-socket", path, "reload"}, out: "reload started\n"},
		{args: []string{"-socket", path, "stop"}, out: "stop: ok\n"},
		{args: []string{"-socket", path, "scale", "3"}, out: "scaling to 3 workers\n"},
		{args: []string{"-socket", path, "scale", "17"}, code: 1, err: "broodctl: scale: scale: at most 16 workers, got 17\n"},
		{args: []string{"-socket", path, "reopen-logs"}, out: "reopen-logs started\n"},
		{args: []string{"-socket", path}, code: 2, err: "no command"},
		{args: []string{"-socket", path, "restart"}, code: 2, err: `unknown command "restart"`},
		{args: []string{"-socket", path, "scale"}, code: 2, err: "scale needs the number of workers"},
		{args: []string{"-socket", path, "scale", "many"}, code: 2, err: `"many" is not a number`},
		{args: []string{"-socket", path, "status", "now"}, code: 2, err: "status takes no arguments"},
		{args: []string{"-bogus"}, code: 2, err: "flag provided but not defined"},
		{args: []string{"-h"}, code: 0, err: "usage: broodctl"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errs := runCtl(tt.args...)
			if code != tt.code || !strings.Contains(out, tt.out) || !strings.Contains(errs, tt.err) {
				t.Errorf("got exit %d\nstdout %q\nstderr %q\nwant exit %d, stdout with %q, stderr with %q",
					code, out, errs, tt.code, tt.out, tt.err)
			}
		})
	}

	_, out, _ := runCtl("-socket", path, "-json", "status")
	var st control.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.App != "hello" || len(st.Processes) != 4 {
		t.Errorf("-json: got %+v, %v", st, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.reqs {
		if r.Cmd == control.CmdScale && r.N != 3 && r.N != 17 {
			t.Errorf("scale sent n=%d", r.N)
		}
	}
}

func TestNoMaster(t *testing.T) {
	dir := isolate(t)
	path := filepath.Join(t.TempDir(), "gone.sock")
	code, _, errs := runCtl("-socket", path, "status")
	if code != 1 || !strings.Contains(errs, "no brood master is running") || !strings.Contains(errs, path) {
		t.Errorf("missing socket: got exit %d, stderr %q", code, errs)
	}

	// A socket left behind by a master that died: connection refused.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	code, _, errs = runCtl("-socket", path, "reload")
	if code != 1 || !strings.Contains(errs, "nothing answers on "+path) {
		t.Errorf("refused: got exit %d, stderr %q", code, errs)
	}

	code, _, errs = runCtl("status")
	if code != 1 || !strings.Contains(errs, "no brood master is running for this user") || !strings.Contains(errs, dir) {
		t.Errorf("empty default directory: got exit %d, stderr %q", code, errs)
	}
}

func TestFindInDefaultDir(t *testing.T) {
	dir := isolate(t)
	listen := func(app string, port int) string {
		p, err := control.DefaultPath(app, port)
		if err != nil {
			t.Fatal(err)
		}
		serve(t, p)
		return p
	}

	hello := listen("hello", 8080)
	if code, out, errs := runCtl("status"); code != 0 || !strings.Contains(out, "app hello") {
		t.Errorf("the only master: got exit %d, %q, %q", code, out, errs)
	}

	listen("shop", 9000)
	// A stale socket of a master that died must not count.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "dead-1.sock"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()

	code, _, errs := runCtl("status")
	if code != 1 || !strings.Contains(errs, "2 brood masters are running") ||
		!strings.Contains(errs, "-app hello -port 8080") || !strings.Contains(errs, "-app shop -port 9000") ||
		strings.Contains(errs, "dead") {
		t.Errorf("two masters: got exit %d, stderr %q", code, errs)
	}
	for _, args := range [][]string{
		{"-app", "hello", "-port", "8080", "reload"},
		{"-app", "hello", "reload"},
		{"-port", "8080", "reload"},
		{"-socket", hello, "reload"},
	} {
		if code, out, errs := runCtl(args...); code != 0 || out != "reload started\n" {
			t.Errorf("%q: got exit %d, %q, %q", args, code, out, errs)
		}
	}
	code, _, errs = runCtl("-app", "nope", "status")
	if code != 1 || !strings.Contains(errs, "no brood master matching -app nope") {
		t.Errorf("no match: got exit %d, stderr %q", code, errs)
	}
	code, _, errs = runCtl("-app", "dead", "status")
	if code != 1 || !strings.Contains(errs, "left behind by masters that died") || !strings.Contains(errs, "dead-1.sock") {
		t.Errorf("only a stale one: got exit %d, stderr %q", code, errs)
	}

	t.Setenv(control.EnvSocket, hello)
	if code, out, errs := runCtl("status"); code != 0 || !strings.Contains(out, "app hello") {
		t.Errorf("$%s: got exit %d, %q, %q", control.EnvSocket, code, out, errs)
	}
}

func TestTimeout(t *testing.T) {
	isolate(t)
	path := filepath.Join(t.TempDir(), "slow.sock")
	s, err := control.Listen(path, func(context.Context, control.Request) control.Response {
		time.Sleep(500 * time.Millisecond) // stuck, heedless of its context
		return control.Response{OK: true}
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	code, _, errs := runCtl("-socket", path, "-timeout", "100ms", "status")
	if code != 1 || !strings.Contains(errs, "did not answer in time") {
		t.Errorf("got exit %d, stderr %q; want it to say the master did not answer in time", code, errs)
	}
}

func TestMain(m *testing.M) {
	// The test binary is also broodctl itself, for tests that run it in a
	// terminal (top_linux_test.go), and the applications they watch.
	if os.Getenv(envBeBroodctl) != "" {
		main()
	}
	// The tests point XDG_RUNTIME_DIR at temporary directories; never let
	// one find a real master of whoever runs them. (A cluster a test
	// starts is told its socket.)
	if os.Getenv("BROOD_TEST_APP") == "" {
		os.Unsetenv(control.EnvSocket)
	}
	clustertest.Main(m, testApps)
}

// envBeBroodctl makes the test binary run as broodctl.
const envBeBroodctl = "BROODCTL_TEST_MAIN"
