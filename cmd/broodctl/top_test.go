//go:build unix

package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/broodhq/brood/app"
	"github.com/broodhq/brood/framework"
	"github.com/broodhq/brood/internal/control"
)

// The applications the tests run as real clusters; see clustertest.Main.
var testApps = map[string]func() error{
	// light serves every request after a short pause, so a few clients
	// make a load a laptop does not notice.
	// A worker takes a while to start, so a reload lasts long enough to
	// be watched.
	"light": func() error {
		return framework.Run(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(20 * time.Millisecond)
			fmt.Fprintln(w, "ok")
		}), framework.WithApp(func(*app.App) error {
			time.Sleep(time.Second)
			return nil
		}))
	},
}

func TestTrackerRatesAndGone(t *testing.T) {
	t0 := started.Add(time.Hour)
	st := func(reqs1, reqs2 uint64, pid2 int) *control.Status {
		return &control.Status{App: "hello", Generation: 1, Workers: 2, Ready: 2, Started: started,
			Processes: []control.Process{
				{Role: "master", PID: 10, State: "running"},
				{Role: "worker", Slot: 1, PID: 11, State: "ready", Requests: reqs1, Generation: 1},
				{Role: "worker", Slot: 2, PID: pid2, State: "ready", Requests: reqs2, Generation: 1},
			}}
	}
	tr := newTracker()
	tr.observe(st(100, 50, 12), t0)
	tr.observe(st(300, 50, 12), t0.Add(time.Second))
	if got := tr.rate[11]; got != 200 {
		t.Errorf("worker 1 rate: got %v, want 200", got)
	}
	// Worker 2 was replaced by pid 13: pid 12 stays, marked, for goneFor.
	tr.observe(st(500, 0, 13), t0.Add(2*time.Second))
	screen := strings.Join(tr.screen(0, plain), "\n")
	if !strings.Contains(screen, "✗ exited") || !strings.Contains(screen, " 12 ") {
		t.Errorf("the replaced worker is not shown as exited:\n%s", screen)
	}
	if !strings.Contains(screen, "total 200 req/s") {
		t.Errorf("want a total of 200 req/s:\n%s", screen)
	}
	tr.observe(st(700, 0, 13), t0.Add(2*time.Second+goneFor+time.Second))
	if screen := strings.Join(tr.screen(0, plain), "\n"); strings.Contains(screen, "exited") {
		t.Errorf("the replaced worker is still shown after %s:\n%s", goneFor, screen)
	}
}

func TestSparkline(t *testing.T) {
	for _, c := range []struct {
		in    []float64
		width int
		want  string
	}{
		{nil, 5, ""},
		{[]float64{0, 0}, 5, "▁▁"},
		{[]float64{0, 1, 2, 4, 8}, 5, "▁▁▂▄█"},
		{[]float64{8, 0, 8}, 2, "▁█"},
	} {
		if got := sparkline(c.in, c.width); got != c.want {
			t.Errorf("sparkline(%v, %d): got %q, want %q", c.in, c.width, got, c.want)
		}
	}
}

func TestBalance(t *testing.T) {
	st := &control.Status{Processes: []control.Process{
		{Role: "worker", Slot: 1, PID: 1, Requests: 100, Accepted: 10},
		{Role: "worker", Slot: 2, PID: 2, Requests: 300, Accepted: 20},
		{Role: "worker", Slot: 2, PID: 3, Requests: 100, Accepted: 10}, // its successor
		{Role: "worker", Slot: 3, PID: 0, Requests: 0},                 // given up
	}}
	line, ok := balance(st)
	if want := "balance: busiest slot 1.60× the mean over 2 slots (500 requests); connections 1.50× (40 accepted)"; !ok || line != want {
		t.Errorf("got %q, %v; want %q", line, ok, want)
	}
	if _, ok := balance(&control.Status{Processes: st.Processes[:1]}); ok {
		t.Error("a balance for one slot; want none")
	}
}

// Not on a terminal, top prints a table every interval, and says so and
// fails when the master goes away.
func TestTopPlainUntilMasterGoes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl.sock")
	f := &fake{}
	s, err := control.Listen(path, f.handle, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"-socket", path, "-interval", "50ms", "top"}, &out, &errb)
	}()
	time.Sleep(500 * time.Millisecond)
	s.Close()
	select {
	case code := <-done:
		if code != 1 || !strings.Contains(errb.String(), "the master went away") {
			t.Errorf("got exit %d, stderr %q; want 1 and that the master went away", code, errb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("top did not notice the master went away")
	}
	if n := strings.Count(out.String(), "LAST MINUTE"); n < 2 {
		t.Errorf("got %d tables, want at least 2:\n%s", n, out.String())
	}
	for _, want := range []string{"brood top  hello  [::]:8080  generation 2  workers 0/2 ready", "↓ draining", "JOB"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// A master that takes the request but never answers (stopped, say): top
// gives up after -timeout and says the master stopped answering.
func TestTopPlainMasterStopsAnswering(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl.sock")
	release := make(chan struct{})
	s, err := control.Listen(path, func(context.Context, control.Request) control.Response {
		<-release
		return control.Fail("too late")
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer close(release) // before Close, which waits for the handler
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"-socket", path, "-timeout", "300ms", "top"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "the master stopped answering") {
		t.Errorf("got exit %d, stderr %q; want 1 and that the master stopped answering", code, errb.String())
	}
}

// A master whose socket answers but whose loop does not refuses with "the
// master did not take the command": that is a master that stopped
// answering too.
func TestTopPlainMasterLoopStuck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl.sock")
	s, err := control.Listen(path, func(context.Context, control.Request) control.Response {
		return control.Fail("the master did not take the command: context deadline exceeded")
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"-socket", path, "top"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "the master stopped answering: the master did not take the command") {
		t.Errorf("got exit %d, stderr %q; want 1 and that the master stopped answering", code, errb.String())
	}
}
