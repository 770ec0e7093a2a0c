// Command opsbench is the proof for brood's zero-downtime operations (issue
// 5): it runs load through rolling reloads, through scaling 2→4→1 and
// through a reload whose new binary's workers exit at startup, and counts
// the requests served and failed, split by keep-alive clients and clients
// that open a connection per request. For comparison it runs the same
// reloads against cmd/naivereload, the rolling restart of gunicorn's
// reuse_port and pm2 (new process binds its own SO_REUSEPORT socket, old
// one runs http.Server.Shutdown).
//
//	cd bench && go run ./cmd/opsbench
//
// It builds cmd/opsapp (examples/hello plus a link-time switch that makes
// workers exit at startup) and cmd/naivereload into a temporary directory
// and serves on 127.0.0.1 only. Every run, wait and request is bounded in
// time; every process it started is stopped by pid. A failure is any
// request without a complete 2xx response; nothing is retried (see
// client.go for how failures are classified).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/broodhq/brood/bench/internal/target"
)

type options struct {
	reloads   int
	gap       time.Duration
	keepAlive int
	fresh     int
	settle    time.Duration
	timeout   time.Duration
	opTimeout time.Duration
	show      int
	only      string
	sleep     time.Duration
	logDir    string
	shared    bool // the benchmark lock could not be had

	pausing        int           // pausing keep-alive clients in the pausing scenarios
	maxPause       time.Duration // their longest pause between requests
	pausingReloads int           // reloads in the pausing scenario
	pausingFor     time.Duration // length of the pausing scenario without reloads
	stopTries      int           // stop-during-reload tries
	stopAfter      time.Duration // from HUP to TERM in each
}

func main() {
	var o options
	flag.IntVar(&o.reloads, "reloads", 8, "reloads in the reload scenarios (1-50)")
	flag.DurationVar(&o.gap, "gap", 500*time.Millisecond, "pause after each operation completes")
	flag.IntVar(&o.keepAlive, "keepalive", 16, "keep-alive clients (1-500)")
	flag.IntVar(&o.fresh, "fresh", 16, "fresh-connection clients (1-500)")
	flag.DurationVar(&o.settle, "settle", time.Second, "load before the first and after the last operation")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Second, "bound on each request, connecting included")
	flag.DurationVar(&o.opTimeout, "op-timeout", 30*time.Second, "bound on each reload or scaling step")
	flag.IntVar(&o.show, "show", 20, "failures to list per scenario")
	flag.StringVar(&o.logDir, "logs", "", "write each scenario's server log (access records left out) into this directory")
	flag.DurationVar(&o.sleep, "sleep", 0, "server-side time per request (at most 1s), to keep requests in flight while workers drain")
	flag.StringVar(&o.only, "only", "reload,naive,scale,bad,pausing,stopreload", "scenarios to run, comma-separated (also: pausing-steady)")
	flag.IntVar(&o.pausing, "pausing", 500, "pausing: keep-alive clients that pause between requests (1-2000)")
	flag.DurationVar(&o.maxPause, "max-pause", 4*time.Second, "pausing: longest pause between a client's requests, each a random 0 to this")
	flag.IntVar(&o.pausingReloads, "pausing-reloads", 3, "pausing: reloads (1-20)")
	flag.DurationVar(&o.pausingFor, "pausing-for", 15*time.Second, "pausing-steady: how long the same load runs without a reload")
	flag.IntVar(&o.stopTries, "stop-tries", 3, "stopreload: how many times to start brood, HUP it and TERM it during the reload (1-10)")
	flag.DurationVar(&o.stopAfter, "stop-after", 5*time.Millisecond, "stopreload: time from the HUP to the TERM")
	flag.Parse()
	if o.pausing < 1 || o.pausing > 2000 || o.maxPause <= 0 || o.maxPause > 30*time.Second || o.pausingReloads < 1 || o.pausingReloads > 20 ||
		o.pausingFor <= 0 || o.pausingFor > 2*time.Minute || o.stopTries < 1 || o.stopTries > 10 || o.stopAfter < 0 || o.stopAfter > 10*time.Second {
		fmt.Fprintln(os.Stderr, "opsbench: a flag is out of range; see -h")
		os.Exit(2)
	}
	if o.reloads < 1 || o.reloads > 50 || o.keepAlive < 1 || o.keepAlive > 500 || o.fresh < 1 || o.fresh > 500 ||
		o.settle < 0 || o.settle > time.Minute || o.gap < 0 || o.gap > time.Minute ||
		o.timeout <= 0 || o.timeout > time.Minute || o.sleep < 0 || o.sleep > time.Second || o.opTimeout <= 0 || o.opTimeout > 5*time.Minute {
		fmt.Fprintln(os.Stderr, "opsbench: a flag is out of range; see -h")
		os.Exit(2)
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	ctx, cancelRun := context.WithTimeoutCause(ctx, 15*time.Minute, errors.New("opsbench: the whole run is bounded to 15 minutes"))
	defer cancelRun()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "opsbench:", err)
		os.Exit(1)
	}
}

// bins are the binaries a run uses.
type bins struct {
	good, bad, naive string
	deployed         string // the path brood runs and deploys replace
}

func run(ctx context.Context, o options, out io.Writer) error {
	// One benchmark at a time on this machine: the others would load the
	// same two cores, and this one would disturb theirs.
	release, err := target.Exclusive(ctx, 10*time.Minute)
	if err != nil {
		fmt.Fprintf(os.Stderr, "opsbench: %v; running anyway\n", err)
		o.shared = true
	}
	defer release()
	dir, err := os.MkdirTemp("", "opsbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b, err := build(ctx, dir)
	if err != nil {
		return err
	}
	scenarios := map[string]func(context.Context, options, bins) ([]*result, error){
		"reload":         one(reloadBrood),
		"naive":          one(reloadNaive),
		"scale":          one(scale),
		"bad":            one(badReload),
		"pausing":        one(pausingReloads),
		"pausing-steady": one(pausingSteady),
		"stopreload":     stopDuringReload,
	}
	var results []*result
	var errs []error
	for _, name := range strings.Split(o.only, ",") {
		fn := scenarios[strings.TrimSpace(name)]
		if fn == nil {
			return fmt.Errorf("no scenario %q: want reload, naive, scale, bad, pausing, pausing-steady, stopreload", name)
		}
		busy, quiet := target.WaitQuietContext(ctx, 0.3, time.Second, 30*time.Second)
		fmt.Fprintf(os.Stderr, "opsbench: %s (machine busy %.2f cores before)...\n", name, busy)
		rs, err := fn(ctx, o, b)
		if len(rs) > 0 && !quiet {
			rs[0].Notes = append(rs[0].Notes, fmt.Sprintf("started on a busy machine: %.2f cores of other work", busy))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		results = append(results, rs...)
		if ctx.Err() != nil {
			break
		}
	}
	report(out, o, results)
	return errors.Join(errs...)
}

// one adapts a scenario with one result.
func one(fn func(context.Context, options, bins) (*result, error)) func(context.Context, options, bins) ([]*result, error) {
	return func(ctx context.Context, o options, b bins) ([]*result, error) {
		r, err := fn(ctx, o, b)
		if r == nil {
			return nil, err
		}
		return []*result{r}, err
	}
}

// build compiles the good and bad opsapp and naivereload into dir with the
// go command, which must run inside the bench module.
func build(ctx context.Context, dir string) (bins, error) {
	b := bins{
		good:     filepath.Join(dir, "build", "opsapp"),
		bad:      filepath.Join(dir, "build", "opsapp-bad"),
		naive:    filepath.Join(dir, "build", "naivereload"),
		deployed: filepath.Join(dir, "srv", "opsapp"),
	}
	steps := [][]string{
		{"build", "-o", b.good, "github.com/broodhq/brood/bench/cmd/opsapp"},
		{"build", "-ldflags", "-X main.exitAtStart=yes", "-o", b.bad, "github.com/broodhq/brood/bench/cmd/opsapp"},
		{"build", "-o", b.naive, "github.com/broodhq/brood/bench/cmd/naivereload"},
	}
	for _, args := range steps {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return b, fmt.Errorf("go %s (run opsbench from the bench/ directory): %w", strings.Join(args, " "), err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(b.deployed), 0o755); err != nil {
		return b, err
	}
	return b, nil
}

// deploy copies src next to the deployed path and renames it over that
// path, as a deploy does: the running binary's file stays intact.
func deploy(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	tmp := dst + ".new"
	if err := os.WriteFile(tmp, data, 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// op is one operation in a scenario, for the report.
type op struct {
	What        string
	Start, Done time.Time
}

// result is one scenario's measurements.
type result struct {
	Scenario  string
	Server    string
	Load      *load
	KeepAlive tally
	Fresh     tally
	Ops       []op
	Events    []event
	Notes     []string
	Pausing   bool // the keep-alive tally is of pausing clients, and there are no fresh ones
}

// session starts a server with 2 workers and load against it; end stops
// both, bounded, and fills in r.
type session struct {
	srv  *server
	load *load
	r    *result
}

func begin(ctx context.Context, o options, r *result, name, path string, env []string) (*session, error) {
	return beginWith(ctx, o, r, name, path, env, func(addr string) *load {
		return startLoad(addr, o.keepAlive, o.fresh, o.timeout, o.sleep)
	})
}

// beginWith is begin with another load.
func beginWith(ctx context.Context, o options, r *result, name, path string, env []string, start func(addr string) *load) (*session, error) {
	srv, err := startServer(name, path, env)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := srv.waitReady(wctx); err != nil {
		srv.stop(5 * time.Second)
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s := &session{srv: srv, r: r}
	s.load = start(srv.addr)
	return s, settle(ctx, o.settle)
}

// end stops the load, then the server.
func (s *session) end(o options) error {
	s.r.Load = s.load
	s.r.KeepAlive, s.r.Fresh = s.load.finish()
	err := s.srv.stop(40 * time.Second)
	s.r.Events = s.srv.snapshot()
	if o.logDir != "" {
		var b strings.Builder
		for _, ev := range s.r.Events {
			b.WriteString(ev.Raw + "\n")
		}
		name := strings.NewReplacer(" ", "-", "→", "-").Replace(s.r.Scenario + "-" + s.r.Server + ".log")
		err = errors.Join(err, os.MkdirAll(o.logDir, 0o755), os.WriteFile(filepath.Join(o.logDir, name), []byte(b.String()), 0o644))
	}
	return err
}

// do runs one operation: send sig, wait for a log line starting with want
// (one starting with any of bad is an error), then pause o.gap.
func (s *session) do(ctx context.Context, o options, what string, sig syscall.Signal, want string, bad ...string) (event, error) {
	from := s.srv.mark()
	opStart := time.Now()
	if err := s.srv.signal(sig); err != nil {
		return event{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, o.opTimeout)
	defer cancel()
	ev, err := s.srv.waitFor(wctx, from, want, bad...)
	s.r.Ops = append(s.r.Ops, op{What: what, Start: opStart, Done: time.Now()})
	if err != nil {
		return ev, fmt.Errorf("%s: %w", what, err)
	}
	return ev, settle(ctx, o.gap)
}

// drained waits (bounded) until the master has n children left, so that
// the load covers the old workers' drains to their end, then lets the load
// run o.settle more.
func (s *session) drained(ctx context.Context, o options, n int) error {
	wctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	d, err := s.srv.waitChildren(wctx, n)
	if err != nil {
		return err
	}
	s.r.Notes = append(s.r.Notes, fmt.Sprintf("the last replaced processes had exited %s after the last operation's completion line and pause", ms(d)))
	return settle(ctx, o.settle)
}

// beginBrood puts the good build at the deployed path and starts a brood
// session on it.
func beginBrood(ctx context.Context, o options, r *result, b bins) (*session, error) {
	if err := deploy(b.good, b.deployed); err != nil {
		return nil, err
	}
	return begin(ctx, o, r, "brood", b.deployed, broodEnv())
}

func broodEnv() []string {
	return []string{
		"BROOD_ADDR=127.0.0.1:0",
		"BROOD_WORKERS=2",
		"BROOD_LOG_FORMAT=json",
		"BROOD_LOG_LEVEL=debug", // "started"/"stopped" lines for the timeline
		"BROOD_CONTROL_SOCKET=-",
	}
}

// reloadBrood: o.reloads deploys, each a new copy of the binary renamed
// over the running one and a HUP, one after another, under load.
func reloadBrood(ctx context.Context, o options, b bins) (*result, error) {
	r := &result{Scenario: fmt.Sprintf("%d reloads", o.reloads), Server: "brood"}
	s, err := beginBrood(ctx, o, r, b)
	if err != nil {
		return nil, err
	}
	var errs []error
	for i := range o.reloads {
		if err := deploy(b.good, b.deployed); err != nil {
			errs = append(errs, err)
			break
		}
		if _, err := s.do(ctx, o, fmt.Sprintf("reload %d", i+1), syscall.SIGHUP, "reload complete", "reload failed", "reload rolled back"); err != nil {
			errs = append(errs, err)
			break
		}
	}
	if err := s.drained(ctx, o, 3); err != nil { // 2 workers and the agent
		errs = append(errs, err)
	}
	errs = append(errs, s.end(o))
	return r, errors.Join(errs...)
}

// reloadNaive: the same reloads against naivereload.
func reloadNaive(ctx context.Context, o options, b bins) (*result, error) {
	r := &result{Scenario: fmt.Sprintf("%d reloads", o.reloads), Server: "naive"}
	// naivereload needs a fixed port: its children bind it themselves.
	addr, err := target.FreeAddr()
	if err != nil {
		return nil, err
	}
	s, err := begin(ctx, o, r, "naive", b.naive, []string{"BROOD_ADDR=" + addr, "NAIVE_WORKERS=2"})
	if err != nil {
		return nil, err
	}
	var errs []error
	for i := range o.reloads {
		if _, err := s.do(ctx, o, fmt.Sprintf("reload %d", i+1), syscall.SIGHUP, "reload complete", "reload failed"); err != nil {
			errs = append(errs, err)
			break
		}
	}
	if err := s.drained(ctx, o, 2); err != nil { // naivereload waits for each exit anyway
		errs = append(errs, err)
	}
	errs = append(errs, s.end(o))
	return r, errors.Join(errs...)
}

// scale: 2 → 3 → 4 (TTIN twice) → 3 → 2 → 1 (TTOU three times).
func scale(ctx context.Context, o options, b bins) (*result, error) {
	r := &result{Scenario: "scale 2→4→1", Server: "brood"}
	s, err := beginBrood(ctx, o, r, b)
	if err != nil {
		return nil, err
	}
	var errs []error
	steps := []struct {
		sig  syscall.Signal
		want int
	}{{syscall.SIGTTIN, 3}, {syscall.SIGTTIN, 4}, {syscall.SIGTTOU, 3}, {syscall.SIGTTOU, 2}, {syscall.SIGTTOU, 1}}
	for _, st := range steps {
		name := fmt.Sprintf("TTIN → %d", st.want)
		if st.sig == syscall.SIGTTOU {
			name = fmt.Sprintf("TTOU → %d", st.want)
		}
		ev, err := s.do(ctx, o, name, st.sig, "scaled", "scale up failed", "scale down failed", "cannot scale")
		if err == nil && ev.Workers != st.want {
			err = fmt.Errorf("%s: scaled to %d workers, want %d", name, ev.Workers, st.want)
		}
		if err != nil {
			errs = append(errs, err)
			break
		}
	}
	if err := s.drained(ctx, o, 2); err != nil { // 1 worker and the agent
		errs = append(errs, err)
	}
	if pids := s.srv.workerPIDs(); len(pids) != 1 {
		errs = append(errs, fmt.Errorf("after scaling to 1: %d worker processes (%v), want 1", len(pids), pids))
	}
	errs = append(errs, s.end(o))
	return r, errors.Join(errs...)
}

// badReload: deploy a binary whose workers exit at startup, HUP, wait for
// the rollback, and check that the workers from before still serve.
func badReload(ctx context.Context, o options, b bins) (*result, error) {
	r := &result{Scenario: "bad deploy", Server: "brood"}
	s, err := beginBrood(ctx, o, r, b)
	if err != nil {
		return nil, err
	}
	var errs []error
	before := s.srv.workerPIDs()
	slices.Sort(before)
	from := s.srv.mark()
	var rolledBack time.Time
	if err := deploy(b.bad, b.deployed); err != nil {
		errs = append(errs, err)
	} else if ev, err := s.do(ctx, o, "reload (bad binary)", syscall.SIGHUP, "reload rolled back", "reload complete"); err != nil {
		errs = append(errs, err)
	} else {
		rolledBack = ev.At
		if why, err := s.srv.waitFor(ctx, from, "reload failed"); err == nil {
			r.Notes = append(r.Notes, "logged: "+why.Msg)
		}
	}
	if err := s.drained(ctx, o, 3); err != nil {
		errs = append(errs, err)
	}
	after := s.srv.workerPIDs()
	slices.Sort(after)
	errs = append(errs, s.end(o))

	r.Notes = append(r.Notes, fmt.Sprintf("worker pids before the deploy %v, after the rollback %v", before, after))
	if !slices.Equal(before, after) {
		errs = append(errs, fmt.Errorf("worker pids changed: %v before, %v after", before, after))
	}
	if !rolledBack.IsZero() {
		var all tally
		all.merge(&r.KeepAlive)
		all.merge(&r.Fresh)
		var serving []string
		for pid, seen := range all.PIDs {
			if seen.Last.After(rolledBack) {
				serving = append(serving, fmt.Sprintf("%d", pid))
				if !slices.Contains(before, pid) {
					errs = append(errs, fmt.Errorf("pid %d, not a worker from before the deploy, served after the rollback", pid))
				}
			}
		}
		slices.Sort(serving)
		r.Notes = append(r.Notes, fmt.Sprintf("pids that answered after the rollback: %s", strings.Join(serving, ", ")))
	}
	return r, errors.Join(errs...)
}
