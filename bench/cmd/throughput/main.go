// Command throughput compares hello-world throughput and latency of brood
// with N workers against one plain net/http + chi process, in the same run:
// all servers stay up, and rounds alternate between them (plain, brood,
// brood bare, plain, ...) with the same generator, connection count and
// duration, so drift on the machine hits every target alike. Each round's
// ratios to plain are reported, and their median.
//
// The machine has 2 cores and the generator shares them with the server it
// measures; the CPU each side used is reported beside every run.
//
//	cd bench && go run ./cmd/throughput -conns 50,200 -rounds 5 -d 5s
//	cd bench && go run ./cmd/throughput -gen wrk     # the same with wrk
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/broodhq/brood/bench/internal/loadgen"
	"github.com/broodhq/brood/bench/internal/stats"
	"github.com/broodhq/brood/bench/internal/target"
	"github.com/broodhq/brood/bench/internal/wrk"
)

// The targets, by the names reports use.
var targets = map[string]struct {
	binary string
	brood  bool
	level  string // $BROOD_LOG_LEVEL
	about  string
}{
	"plain":  {"plain", false, "", "one net/http + chi process, GOMAXPROCS default"},
	"brood":  {"hello", true, "warn", "examples/hello, default middleware chain, BROOD_LOG_LEVEL=warn (the access log checks its level, writes nothing)"},
	"bare":   {"hellobare", true, "warn", "cmd/hellobare: brood with WithMiddleware() (router served bare), BROOD_LOG_LEVEL=warn"},
	"logged": {"hello", true, "info", "examples/hello, default chain, BROOD_LOG_LEVEL=info: a JSON access-log line per request to stderr (/dev/null)"},
}

type run struct {
	Conns  int            `json:"conns"`
	Round  int            `json:"round"`
	Target string         `json:"target"`
	Result loadgen.Result `json:"result"`
	// CPU used during the run, in cores (1.0 = one core busy throughout).
	ServerCPU float64 `json:"server_cpu_cores"`
	GenCPU    float64 `json:"generator_cpu_cores"`
	// The kernel's softirq time, mostly the loopback TCP receive path,
	// which no process is charged for.
	SoftirqCPU float64 `json:"softirq_cpu_cores"`
	// CPU used by every other process on the machine (other people's
	// builds, tests and benchmarks). Above -max-other makes the round
	// noisy.
	OtherCPU float64 `json:"other_cpu_cores"`
	// CPU left idle during the run.
	IdleCPU float64 `json:"idle_cpu_cores"`
	// A run of its round was noisy, so the round is left out of the ratios.
	Noisy bool `json:"noisy,omitempty"`
	// The machine was not quiet when the run started (see -quiet).
	StartedBusy bool `json:"started_busy,omitempty"`
}

type ratio struct {
	Conns  int           `json:"conns"`
	Target string        `json:"target"` // divided by plain
	Rounds int           `json:"rounds"` // clean rounds the ratios are from
	RPS    []float64     `json:"rps_ratios"`
	P99    []float64     `json:"p99_ratios"`
	RPSSum stats.Summary `json:"rps_ratio"`
	P99Sum stats.Summary `json:"p99_ratio"`
	// Median server CPU µs per successful request: plain's, then this
	// target's.
	CPUPerReq []float64 `json:"cpu_us_per_request"`
}

type report struct {
	Generator string  `json:"generator"`
	CPUs      int     `json:"cpus"`
	Workers   int     `json:"workers"`
	Duration  string  `json:"duration"`
	Runs      []run   `json:"runs"`
	Ratios    []ratio `json:"ratios"`
}

func main() {
	connsFlag := flag.String("conns", "50,200", "connection counts to try, comma-separated")
	rounds := flag.Int("rounds", 5, "clean rounds wanted per connection count, 1 to 50; up to twice as many are run to get them")
	maxOther := flag.Float64("max-other", 0.1, "a round in which any run saw more than this many cores busy with other work is noisy: reported, left out of the ratios")
	d := flag.Duration("d", 5*time.Second, "duration of each run, 1s to 1m")
	warmup := flag.Duration("warmup", time.Second, "unreported run per target before the rounds, at most 1m")
	gen := flag.String("gen", "load", "load generator: load (in-process) or wrk")
	names := flag.String("targets", "plain,brood,bare", "targets in the order each round runs them, from plain, brood, bare, logged; plain must be one")
	workers := flag.Int("workers", 2, "brood workers")
	fresh := flag.Bool("fresh", false, "a new connection per request (-gen load only)")
	bin := flag.String("bin", "results/bin", "directory the server binaries are built into")
	quiet := flag.Float64("quiet", 0.3, "before each run, wait (up to -quiet-wait) until the machine is busy on fewer than this many cores (0: don't wait)")
	quietWait := flag.Duration("quiet-wait", 10*time.Second, "longest wait for a quiet machine before a run, at most 5m")
	asJSON := flag.Bool("json", false, "print the report as JSON")
	flag.Parse()

	conns, err := parseInts(*connsFlag)
	switch {
	case err != nil:
		fail(fmt.Errorf("-conns: %w", err))
	case *maxOther <= 0:
		fail(fmt.Errorf("-max-other %v: want above 0", *maxOther))
	case *rounds < 1 || *rounds > 50:
		fail(fmt.Errorf("-rounds %d: want 1 to 50", *rounds))
	case *d < time.Second || *d > time.Minute:
		fail(fmt.Errorf("-d %s: want 1s to 1m", *d))
	case *warmup < 0 || *warmup > time.Minute:
		fail(fmt.Errorf("-warmup %s: want 0s to 1m", *warmup))
	case *gen != "load" && *gen != "wrk":
		fail(fmt.Errorf("-gen %q: want load or wrk", *gen))
	case *quietWait < 0 || *quietWait > 5*time.Minute:
		fail(fmt.Errorf("-quiet-wait %s: want 0s to 5m", *quietWait))
	case *fresh && *gen == "wrk":
		fail(fmt.Errorf("-fresh: wrk keeps connections alive; use -gen load"))
	}
	order := strings.Split(*names, ",")
	var bins []string
	hasPlain := false
	for _, n := range order {
		t, ok := targets[n]
		if !ok {
			fail(fmt.Errorf("-targets: unknown target %q (want plain, brood, bare, logged)", n))
		}
		hasPlain = hasPlain || n == "plain"
		bins = append(bins, t.binary)
	}
	if !hasPlain {
		fail(fmt.Errorf("-targets: the ratios need plain"))
	}

	// Ctrl-C or SIGTERM ends the run; the servers in use are still stopped.
	// One benchmark at a time on this machine: Session takes the lock.
	ctx, done := target.Session("throughput")
	defer done()
	paths, err := target.Build(ctx, *bin, bins...)
	if err != nil {
		fail(err)
	}
	procs := map[string]*target.Process{}
	defer func() {
		for _, p := range procs {
			if err := p.Stop(10 * time.Second); err != nil {
				fmt.Fprintln(os.Stderr, "throughput:", err)
			}
		}
	}()
	for _, n := range order {
		spec := target.Spec{Name: n, Path: paths[targets[n].binary]}
		if targets[n].brood {
			spec.Env = []string{"BROOD_WORKERS=" + strconv.Itoa(*workers), "BROOD_LOG_LEVEL=" + targets[n].level}
			spec.DiscardOutput = targets[n].level == "info"
		}
		addr, err := target.FreeAddr()
		if err != nil {
			fatal(procs, err)
		}
		p, err := target.Start(spec, addr)
		if err != nil {
			fatal(procs, err)
		}
		procs[n] = p
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = p.WaitServing(wctx, "/", time.Millisecond)
		cancel()
		if err != nil {
			fatal(procs, err)
		}
	}

	rep := report{Generator: *gen, CPUs: runtime.NumCPU(), Workers: *workers, Duration: d.String()}
	measure := func(n string, c int, dur time.Duration) (run, error) {
		var noisy bool
		if *quiet > 0 {
			busy, ok := target.WaitQuietContext(ctx, *quiet, 300*time.Millisecond, *quietWait)
			if !ok {
				noisy = true
				if !*asJSON {
					fmt.Fprintf(os.Stderr, "throughput: machine still busy on %.2f cores after %s; running anyway\n", busy, *quietWait)
				}
			}
		}
		p := procs[n]
		url := "http://" + p.Addr + "/"
		pids := target.Tree(p.PID())
		o0, m0 := target.SnapshotOthers(), target.MachineTicks()
		srv0, gen0, t0 := target.CPUTicks(pids), selfCPU(), time.Now()
		var res loadgen.Result
		var wrkCPU time.Duration
		var err error
		if *gen == "wrk" {
			res, wrkCPU, err = wrk.Run(ctx, url, runtime.NumCPU(), c, dur)
		} else {
			res, err = loadgen.Run(ctx, loadgen.Config{URL: url, Conns: c, Duration: dur, Fresh: *fresh})
		}
		wall := time.Since(t0)
		m1, o1 := target.MachineTicks(), target.SnapshotOthers()
		got := run{Conns: c, Target: n, Result: res, StartedBusy: noisy}
		got.ServerCPU = target.Cores(target.CPUTicks(pids)-srv0, wall)
		got.GenCPU = (selfCPU() - gen0 + wrkCPU).Seconds() / wall.Seconds()
		got.SoftirqCPU = target.Cores(m1.Softirq-m0.Softirq, wall)
		got.IdleCPU = target.Cores((m1.Total-m0.Total)-(m1.Busy-m0.Busy), wall)
		// Processes charged with our servers' and generator's CPU: the
		// servers, this process and its parent (go run); wrk, this
		// process's child, ends before the second snapshot.
		ours := append(target.Tree(p.PID()), os.Getpid(), os.Getppid())
		// Two lower bounds of the CPU other work took: what the other
		// processes alive at the end were charged, and the machine's busy
		// time less ours and all softirq (some softirq is charged to our
		// processes too). Short-lived processes escape the first; the
		// second misses what softirq we were charged.
		got.OtherCPU = max(target.OtherCores(o0, o1, ours, wall),
			target.Cores(m1.Busy-m0.Busy-(m1.Softirq-m0.Softirq), wall)-got.ServerCPU-got.GenCPU)
		return got, err
	}

	if !*asJSON {
		fmt.Printf("throughput: %d CPUs shared by the servers and the generator (%s); %d rounds of %s per target per connection count, alternating %s\n",
			runtime.NumCPU(), genAbout(*gen, *fresh), *rounds, *d, strings.Join(order, ", "))
		for _, n := range order {
			fmt.Printf("  %-5s %s\n", n, targets[n].about)
		}
		fmt.Println("cpu columns are in cores: the server's processes (srv), the generator (gen), the kernel's softirq (sirq, mostly the loopback TCP")
		fmt.Println("receive path; partly charged to the processes too), every other process on the machine (oth), and idle;")
		fmt.Println("µs/req is the server's CPU per successful request.")
		fmt.Printf("A round where any run saw oth > %.2f is noisy (marked *) and left out of the ratios.\n", *maxOther)
	}
	for _, c := range conns {
		if *warmup > 0 {
			for _, n := range order {
				_, err := measure(n, c, *warmup)
				if err == nil {
					err = context.Cause(ctx)
				}
				if err != nil {
					fatal(procs, err)
				}
			}
		}
		if !*asJSON {
			fmt.Printf("\n%d connections\n%-6s %-5s %9s %7s %7s %7s %7s %6s %5s %5s %5s %5s %5s %7s\n", c, "round", "", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "srv", "gen", "sirq", "oth", "idle", "µs/req")
		}
		byRound := map[string][]run{}
		clean := 0
		for r := 1; clean < *rounds && r <= 2**rounds; r++ {
			round := map[string]run{}
			noisy := false
			for _, n := range order {
				got, err := measure(n, c, *d)
				if err == nil {
					err = context.Cause(ctx)
				}
				if err != nil {
					fatal(procs, err)
				}
				got.Round = r
				round[n] = got
				noisy = noisy || got.OtherCPU > *maxOther || got.StartedBusy
			}
			if !noisy {
				clean++
			}
			for _, n := range order {
				got := round[n]
				got.Noisy = noisy
				rep.Runs = append(rep.Runs, got)
				if !noisy {
					byRound[n] = append(byRound[n], got)
				}
				if !*asJSON {
					res, mark := got.Result, " "
					if noisy {
						mark = "*"
					}
					fmt.Printf("%-5d%s %-5s %9.0f %7.3f %7.3f %7.3f %7.2f %6d %5.2f %5.2f %5.2f %5.2f %5.2f %7.1f\n", r, mark, n, res.RPS, res.P50, res.P90, res.P99, res.Max, res.Errors.Total(),
						got.ServerCPU, got.GenCPU, got.SoftirqCPU, got.OtherCPU, got.IdleCPU, got.ServerCPU/res.RPS*1e6)
				}
			}
		}
		if clean == 0 {
			fmt.Fprintf(os.Stderr, "throughput: no clean round at %d connections; the ratios use every round\n", c)
			for _, got := range rep.Runs {
				if got.Conns == c {
					byRound[got.Target] = append(byRound[got.Target], got)
				}
			}
		}
		for _, n := range order {
			if n == "plain" {
				continue
			}
			rt := ratio{Conns: c, Target: n, Rounds: len(byRound[n])}
			for i, b := range byRound[n] {
				pl := byRound["plain"][i].Result
				rt.RPS = append(rt.RPS, b.Result.RPS/pl.RPS)
				rt.P99 = append(rt.P99, b.Result.P99/pl.P99)
			}
			rt.RPSSum, rt.P99Sum = stats.Summarize(rt.RPS), stats.Summarize(rt.P99)
			rt.CPUPerReq = append(rt.CPUPerReq, cpuPerReq(byRound["plain"]), cpuPerReq(byRound[n]))
			rep.Ratios = append(rep.Ratios, rt)
			if !*asJSON {
				fmt.Printf("%s/plain over %d rounds: req/s ×%.2f (%.2f–%.2f), p99 ×%.2f (%.2f–%.2f), server CPU %.1f vs %.1f µs/req   [targets: req/s ≥ ×1.15, p99 ≤ ×0.50]\n",
					n, rt.Rounds, rt.RPSSum.Median, rt.RPSSum.Min, rt.RPSSum.Max, rt.P99Sum.Median, rt.P99Sum.Min, rt.P99Sum.Max, rt.CPUPerReq[1], rt.CPUPerReq[0])
			}
		}
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	}
}

// cpuPerReq is the median over runs of the server's CPU µs per successful
// request.
func cpuPerReq(runs []run) float64 {
	var xs []float64
	for _, r := range runs {
		if r.Result.RPS > 0 {
			xs = append(xs, r.ServerCPU/r.Result.RPS*1e6)
		}
	}
	return stats.Median(xs)
}

func genAbout(gen string, fresh bool) string {
	conn := "keep-alive"
	if fresh {
		conn = "a fresh connection per request"
	}
	if gen == "wrk" {
		return fmt.Sprintf("wrk -t%d, keep-alive", runtime.NumCPU())
	}
	return fmt.Sprintf("cmd/load's generator in this process, GOMAXPROCS=%d, %s", runtime.GOMAXPROCS(0), conn)
}

// selfCPU is the CPU time this process has used, the in-process generator's.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func parseInts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > loadgen.MaxConns {
			return nil, fmt.Errorf("%q: want counts from 1 to %d", f, loadgen.MaxConns)
		}
		out = append(out, n)
	}
	return out, nil
}

// fatal stops what was started, then exits.
func fatal(procs map[string]*target.Process, err error) {
	for _, p := range procs {
		p.Stop(10 * time.Second)
	}
	fail(err)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "throughput:", err)
	os.Exit(1)
}
