package fleet_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/broodhq/brood/agent"
	"github.com/broodhq/brood/app"
	"github.com/broodhq/brood/fleet"
	"github.com/broodhq/brood/framework"
	"github.com/broodhq/brood/internal/clustertest"
	"github.com/broodhq/brood/internal/redistest"
	"github.com/broodhq/brood/messenger"
	"github.com/broodhq/brood/schedule"
)

func TestMain(m *testing.M) {
	clustertest.Main(m, map[string]func() error{"fleet": runFleetApp})
}

// run is one run of the fleet job, as the job records it.
type run struct {
	Host  int       `json:"host"` // the master's pid
	Tick  int64     `json:"tick"` // the due time, in periods since the epoch
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Epoch int64     `json:"epoch"`
	Cause string    `json:"cause,omitempty"` // why its context ended early
}

// got is one delivery of a fleet message.
type got struct {
	Host int    `json:"host"`
	PID  int    `json:"pid"`
	Role string `json:"role"`
	V    string `json:"v"`
	At   int64  `json:"at"` // unix µs
	Sent int64  `json:"sent"`
}

const period = 200 * time.Millisecond

var fileMu sync.Mutex

// appendJSON appends one line; lines under PIPE_BUF from O_APPEND writes
// of several processes do not interleave.
func appendJSON(path string, v any) {
	b, _ := json.Marshal(v)
	fileMu.Lock()
	defer fileMu.Unlock()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	f.Write(append(b, '\n'))
	f.Close()
}

// runFleetApp records every run of a OncePerFleet job and every fleet
// message each process receives.
func runFleetApp() error {
	runs, msgs := os.Getenv("BROOD_TEST_RUNS"), os.Getenv("BROOD_TEST_MSGS")
	onPing := func(role string) func(messenger.Message) {
		return func(m messenger.Message) {
			var p struct {
				V    string `json:"v"`
				Sent int64  `json:"sent"`
			}
			m.Decode(&p)
			host := os.Getppid()
			appendJSON(msgs, got{Host: host, PID: os.Getpid(), Role: role, V: p.V, Sent: p.Sent, At: time.Now().UnixMicro()})
		}
	}
	r := chi.NewRouter()
	r.Get("/slow", func(w http.ResponseWriter, r *http.Request) { time.Sleep(2 * time.Second) })
	r.Post("/hello", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) })
	r.Get("/send", func(w http.ResponseWriter, r *http.Request) {
		err := app.FromContext(r.Context()).Messenger().BroadcastFleet("ping", map[string]any{"v": r.FormValue("v"), "sent": time.Now().UnixMicro()})
		if err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	return framework.Run(r,
		framework.WithAddr("127.0.0.1:0"), framework.WithWorkers(2), framework.WithName(os.Getenv("BROOD_TEST_NAME")),
		framework.WithShutdownTimeout(5*time.Second),
		framework.WithAgent(func(a *agent.Agent) error {
			a.Messenger().On("ping", onPing("agent"))
			a.Every(period, "tick", func(ctx context.Context) error {
				due, _ := schedule.DueFromContext(ctx)
				rec := run{Host: os.Getppid(), Tick: (due.UnixMilli() + period.Milliseconds()/2) / period.Milliseconds(),
					Start: time.Now(), Epoch: agent.EpochFromContext(ctx)}
				select {
				case <-time.After(50 * time.Millisecond):
				case <-ctx.Done():
					rec.Cause = context.Cause(ctx).Error()
				}
				rec.End = time.Now()
				appendJSON(runs, rec)
				return nil
			}, agent.OncePerFleet)
			return nil
		}),
		framework.WithApp(func(a *app.App) error {
			a.Messenger().On("ping", onPing("worker"))
			return nil
		}),
	)
}

func readLines[T any](t *testing.T, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	s := bufio.NewScanner(f)
	for s.Scan() {
		var v T
		if json.Unmarshal(s.Bytes(), &v) == nil {
			out = append(out, v)
		}
	}
	return out
}

// checkRuns fails on a tick run twice, two runs that overlap, or an epoch
// going back.
func checkRuns(t *testing.T, runs []run) {
	t.Helper()
	slices.SortFunc(runs, func(a, b run) int { return a.Start.Compare(b.Start) })
	ticks := map[int64]run{}
	for i, r := range runs {
		if prev, ok := ticks[r.Tick]; ok {
			t.Errorf("tick %d ran twice: %+v and %+v", r.Tick, prev, r)
		}
		ticks[r.Tick] = r
		if i == 0 {
			continue
		}
		p := runs[i-1]
		// A run frozen by SIGSTOP ends, by the wall clock, after the next
		// host began; it is fenced: its context ended (Cause) and its epoch
		// is older.
		fenced := p.Cause != "" && p.Epoch < r.Epoch
		if r.Start.Before(p.End) && !fenced {
			t.Errorf("runs overlap: %+v and %+v", p, r)
		}
		if r.Epoch < p.Epoch {
			t.Errorf("epoch went back: %+v then %+v", p, r)
		}
		if r.Host != p.Host && r.Epoch == p.Epoch {
			t.Errorf("two hosts ran under one epoch: %+v and %+v", p, r)
		}
	}
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// The lease timing of the cluster tests: short, so that they finish
// quickly; $BROOD_TEST_FLEET_LEASE and $BROOD_TEST_FLEET_RENEW set others
// (e.g. the defaults, 10s and 2s, to measure failover with them).
var (
	lease = envDuration("BROOD_TEST_FLEET_LEASE", 2*time.Second)
	renew = envDuration("BROOD_TEST_FLEET_RENEW", 400*time.Millisecond)
)

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

// Three masters on one machine form a fleet: the job runs on one host per
// tick, without overlaps or repeats, through a SIGKILL, a SIGSTOP longer
// than the lease, and a graceful stop of the holder; BroadcastFleet reaches
// every process of every host; a second application on the same Redis runs
// its own job apart.
func TestThreeHostFleet(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	runsPath, msgsPath, otherPath := filepath.Join(dir, "runs"), filepath.Join(dir, "msgs"), filepath.Join(dir, "other")
	url := fmt.Sprintf("%s?lease=%s&renew=%s", srv.URL(0), lease, renew)
	env := []string{"BROOD_FLEET_REDIS=" + url, "BROOD_TEST_NAME=fleetapp", "BROOD_TEST_RUNS=" + runsPath, "BROOD_TEST_MSGS=" + msgsPath}
	hosts := map[int]*clustertest.Cluster{}
	var order []*clustertest.Cluster
	for range 3 {
		c := clustertest.Start(t, "fleet", env...)
		order = append(order, c)
	}
	other := clustertest.Start(t, "fleet", "BROOD_FLEET_REDIS="+url, "BROOD_TEST_NAME=otherapp", "BROOD_TEST_RUNS="+otherPath, "BROOD_TEST_MSGS="+filepath.Join(dir, "othermsgs"))
	for _, c := range append(order, other) {
		c.WaitReady(30 * time.Second)
		hosts[c.Cmd.Process.Pid] = c
	}

	// Steady state.
	time.Sleep(3 * time.Second)
	runs := readLines[run](t, runsPath)
	if len(runs) < 8 {
		t.Fatalf("%d runs in 3 s of a %v job, want about 15", len(runs), period)
	}
	checkRuns(t, runs)
	if n := len(readLines[run](t, otherPath)); n < 8 {
		t.Errorf("the other application ran its job %d times in 3 s, want about 15: applications must not share a lease", n)
	}

	// Each host publishes its status.
	hs, err := fleet.Hosts(context.Background(), url, "fleetapp")
	if err != nil {
		t.Fatal(err)
	}
	leaders := 0
	for _, h := range hs {
		if hosts[h.PID] == nil || h.Workers != 2 || h.Addr == "" || h.Uptime == "" {
			t.Errorf("published status %+v: want one of the masters %v, with 2 workers, an address and an uptime", h, keysOf(hosts))
		}
		if h.Leader {
			leaders++
		}
	}
	if len(hs) != 3 || leaders != 1 {
		t.Errorf("fleet hosts: got %d, %d leading; want 3, 1: %+v", len(hs), leaders, hs)
	}

	// BroadcastFleet from one worker reaches the agent and both workers of
	// every host.
	if code, body, err := clustertest.Get(clustertest.Client(5*time.Second), order[0].URL("/send?v=hello")); err != nil || code != 200 {
		t.Fatalf("/send: %d %s %v", code, body, err)
	}
	waitFor(t, 10*time.Second, "9 deliveries of the fleet message", func() bool {
		n := 0
		for _, g := range readLines[got](t, msgsPath) {
			if g.V == "hello" {
				n++
			}
		}
		return n >= 9
	})
	per := map[int]map[string]int{}
	for _, g := range readLines[got](t, msgsPath) {
		if per[g.Host] == nil {
			per[g.Host] = map[string]int{}
		}
		per[g.Host][g.Role]++
	}
	for _, c := range order {
		if p := per[c.Cmd.Process.Pid]; p["agent"] != 1 || p["worker"] != 2 {
			t.Errorf("host %d received %v, want 1 agent and 2 workers once each", c.Cmd.Process.Pid, p)
		}
	}
	if n := len(readLines[got](t, filepath.Join(dir, "othermsgs"))); n != 0 {
		t.Errorf("the other application received %d fleet messages, want 0", n)
	}

	// Latency of fleet broadcasts across hosts (one machine, one clock).
	cl := clustertest.Client(5 * time.Second)
	const nLat = 40
	for i := range nLat {
		if code, _, err := clustertest.Get(cl, order[i%3].URL("/send?v=lat")); err != nil || code != 200 {
			t.Fatalf("/send: %d %v", code, err)
		}
	}
	var lat []time.Duration
	waitFor(t, 20*time.Second, "every latency message everywhere", func() bool {
		lat = lat[:0]
		for _, g := range readLines[got](t, msgsPath) {
			if g.V == "lat" {
				lat = append(lat, time.Duration(g.At-g.Sent)*time.Microsecond)
			}
		}
		return len(lat) >= nLat*9
	})
	slices.Sort(lat)
	t.Logf("fleet broadcast latency over %d deliveries (3 hosts x 3 processes): p50 %v, p99 %v, max %v",
		len(lat), lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])

	holder := func() (int, run) {
		rs := readLines[run](t, runsPath)
		last := rs[len(rs)-1]
		return last.Host, last
	}
	// nextRun waits for a run by a host other than h, started after since.
	nextRun := func(h int, since time.Time, within time.Duration) run {
		var found run
		waitFor(t, within, "another host to run the job", func() bool {
			for _, r := range readLines[run](t, runsPath) {
				if r.Host != h && r.Start.After(since) {
					found = r
					return true
				}
			}
			return false
		})
		return found
	}

	// SIGKILL of the holder's whole host (master and children at once):
	// another host runs the job within lease + renew (+ a tick).
	h, _ := holder()
	killedAt := time.Now()
	syscall.Kill(-h, syscall.SIGKILL)
	r := nextRun(h, killedAt, 3*(lease+renew))
	t.Logf("failover after SIGKILL: %v (bound lease+renew = %v)", r.Start.Sub(killedAt), lease+renew)
	if took := r.Start.Sub(killedAt); took > lease+renew+period+500*time.Millisecond {
		t.Errorf("failover after SIGKILL took %v, want within lease+renew+tick = %v", took, lease+renew+period)
	}
	delete(hosts, h)

	// SIGSTOP of the holder's host for longer than the lease, then SIGCONT:
	// another host takes over with a higher epoch, and the stopped one
	// starts nothing under its old epoch afterwards.
	h, last := holder()
	syscall.Kill(-h, syscall.SIGSTOP)
	stoppedAt := time.Now()
	r = nextRun(h, stoppedAt, 3*(lease+renew))
	time.Sleep(lease - time.Since(stoppedAt) + 500*time.Millisecond)
	syscall.Kill(-h, syscall.SIGCONT)
	resumedAt := time.Now()
	if r.Epoch <= last.Epoch {
		t.Errorf("epoch after the SIGSTOP takeover: got %d, want above %d", r.Epoch, last.Epoch)
	}
	time.Sleep(time.Second)
	for _, x := range readLines[run](t, runsPath) {
		if x.Host == h && x.Start.After(resumedAt) {
			t.Errorf("the host paused past its lease ran after SIGCONT: %+v", x)
		}
		if x.Host == h && x.Start.Before(stoppedAt) && x.End.After(resumedAt) && x.Cause == "" {
			t.Errorf("a run cut by the pause ended without its context ending: %+v", x)
		}
	}

	// Reload of the holder: its agent is replaced, and the lease handed
	// over (to the other host, or the new agent) within 1 s (+ a tick).
	h, last = holder()
	hupAt := time.Now()
	hosts[h].Signal(syscall.SIGHUP)
	var next run
	waitFor(t, 10*time.Second, "a run under a new epoch after the reload", func() bool {
		for _, x := range readLines[run](t, runsPath) {
			if x.Epoch > last.Epoch && x.Start.After(hupAt) {
				next = x
				return true
			}
		}
		return false
	})
	t.Logf("handover after SIGHUP (reload): %v", next.Start.Sub(hupAt))
	if took := next.Start.Sub(hupAt); took > time.Second+period {
		t.Errorf("handover after a reload took %v, want at most 1s (+ a tick)", took)
	}
	hosts[h].WaitLog(30*time.Second, 0, clustertest.Msg("reload"))

	// Graceful stop of the holder, with a request in flight that holds its
	// workers' drain for 2 s: handover within 1 s (+ a tick) all the same.
	h, _ = holder()
	slow := make(chan error, 1)
	go func() {
		_, _, err := clustertest.Get(clustertest.Client(10*time.Second), hosts[h].URL("/slow"))
		slow <- err
	}()
	time.Sleep(200 * time.Millisecond)
	termAt := time.Now()
	hosts[h].Signal(syscall.SIGTERM)
	r = nextRun(h, termAt, 10*time.Second)
	t.Logf("handover after SIGTERM: %v", r.Start.Sub(termAt))
	if took := r.Start.Sub(termAt); took > time.Second+period {
		t.Errorf("handover after a graceful stop took %v, want at most 1s (+ a tick)", took)
	}
	if _, ok := hosts[h].Wait(10 * time.Second); !ok {
		t.Error("stopped host did not exit")
	}
	if err := <-slow; err != nil {
		t.Errorf("the request in flight during the graceful stop: %v", err)
	}
	time.Sleep(time.Second)
	checkRuns(t, readLines[run](t, runsPath))
	noRaces(t, append(order, other)...)
}

// noRaces fails if a process of the clusters reported a data race (under
// go test -race, the clusters are the race-enabled test binary).
func noRaces(t *testing.T, cs ...*clustertest.Cluster) {
	t.Helper()
	for _, c := range cs {
		if strings.Contains(c.Output(), "DATA RACE") {
			t.Errorf("master %d: a process reported a data race", c.Cmd.Process.Pid)
		}
	}
}

func keysOf[V any](m map[int]V) []int {
	var k []int
	for x := range m {
		k = append(k, x)
	}
	slices.Sort(k)
	return k
}

// Redis paused for longer than the lease, under HTTP load: no request that
// does not need Redis fails, fleet jobs pause (said once) and resume, and a
// fleet message sent meanwhile waits in the sender's agent and reaches
// every process afterwards.
func TestRedisDownUnderLoad(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	runsPath, msgsPath := filepath.Join(dir, "runs"), filepath.Join(dir, "msgs")
	url := fmt.Sprintf("%s?lease=%s&renew=%s", srv.URL(0), lease, renew)
	env := []string{"BROOD_FLEET_REDIS=" + url, "BROOD_TEST_NAME=fleetapp", "BROOD_TEST_RUNS=" + runsPath, "BROOD_TEST_MSGS=" + msgsPath}
	a, b := clustertest.Start(t, "fleet", env...), clustertest.Start(t, "fleet", env...)
	a.WaitReady(30 * time.Second)
	b.WaitReady(30 * time.Second)
	time.Sleep(time.Second)
	load := clustertest.StartLoad(a.URL("/hello"), 4, true, time.Minute)

	srv.Pause()
	pausedAt := time.Now()
	time.Sleep(lease + time.Second)
	if code, body, err := clustertest.Get(clustertest.Client(5*time.Second), a.URL("/send?v=while-down")); err != nil || code != 200 {
		t.Errorf("/send while Redis is down: %d %s %v; want 200 (the message waits)", code, body, err)
	}
	time.Sleep(time.Second)
	srv.Resume()
	resumedAt := time.Now()
	for _, r := range readLines[run](t, runsPath) {
		if r.Start.After(pausedAt.Add(lease)) && r.Start.Before(resumedAt) {
			t.Errorf("a job ran while Redis was down, past the lease: %+v", r)
		}
	}
	waitFor(t, 15*time.Second, "the job to resume", func() bool {
		for _, r := range readLines[run](t, runsPath) {
			if r.Start.After(resumedAt) {
				return true
			}
		}
		return false
	})
	waitFor(t, 15*time.Second, "6 deliveries of the message sent while Redis was down", func() bool {
		n := 0
		for _, g := range readLines[got](t, msgsPath) {
			if g.V == "while-down" {
				n++
			}
		}
		return n >= 6
	})
	load.Stop()
	if n := load.Failed.Load(); n != 0 || load.OK.Load() == 0 {
		t.Errorf("HTTP while Redis was down: %d ok, %d failed; want none failed:\n%s", load.OK.Load(), n, load.Errors())
	}
	for _, c := range []*clustertest.Cluster{a, b} {
		if n := strings.Count(c.Messages(), "fleet: Redis unreachable"); n != 1 {
			t.Errorf("a host said Redis was unreachable %d times, want once", n)
		}
	}
	checkRuns(t, readLines[run](t, runsPath))
	noRaces(t, a, b)
}
