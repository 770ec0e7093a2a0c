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
	about  string
}{
	"plain": {"plain", false, "one net/http + chi process, GOMAXPROCS default"},
	"brood": {"hello", true, "examples/hello, default middleware chain, BROOD_LOG_LEVEL=warn"},
	"bare":  {"hellobare", true, "cmd/hellobare: brood with WithMiddleware() (router served bare), BROOD_LOG_LEVEL=warn"},
}

type run struct {
	Conns  int            `json:"conns"`
	Round  int            `json:"round"`
	Target string         `json:"target"`
	Result loadgen.Result `json:"result"`
	// CPU used during the run, in cores (1.0 = one core busy throughout).
	ServerCPU float64 `json:"server_cpu_cores"`
	GenCPU    float64 `json:"generator_cpu_cores"`
	// The rest of the machine's busy time: the kernel's loopback work
	// (softirq) that no process is charged for, and anything else
	// running. Well above its usual value means a noisy round.
	OtherCPU float64 `json:"other_cpu_cores"`
	// The machine was not quiet when the run started (see -quiet).
	StartedBusy bool `json:"started_busy,omitempty"`
}

type ratio struct {
	Conns  int           `json:"conns"`
	Target string        `json:"target"` // divided by plain
	RPS    []float64     `json:"rps_ratios"`
	P99    []float64     `json:"p99_ratios"`
	RPSSum stats.Summary `json:"rps_ratio"`
	P99Sum stats.Summary `json:"p99_ratio"`
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
	rounds := flag.Int("rounds", 5, "rounds per connection count, 1 to 50")
	d := flag.Duration("d", 5*time.Second, "duration of each run, 1s to 1m")
	warmup := flag.Duration("warmup", time.Second, "unreported run per target before the rounds, at most 1m")
	gen := flag.String("gen", "load", "load generator: load (in-process) or wrk")
	names := flag.String("targets", "plain,brood,bare", "targets in the order each round runs them; plain must be one")
	workers := flag.Int("workers", 2, "brood workers")
	fresh := flag.Bool("fresh", false, "a new connection per request (-gen load only)")
	bin := flag.String("bin", "results/bin", "directory the server binaries are built into")
	quiet := flag.Float64("quiet", 0.3, "before each run, wait (up to -quiet-wait) until the machine is busy on fewer than this many cores (0: don't wait)")
	quietWait := flag.Duration("quiet-wait", 30*time.Second, "longest wait for a quiet machine before a run, at most 5m")
	asJSON := flag.Bool("json", false, "print the report as JSON")
	flag.Parse()

	conns, err := parseInts(*connsFlag)
	switch {
	case err != nil:
		fail(fmt.Errorf("-conns: %w", err))
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
			fail(fmt.Errorf("-targets: unknown target %q (want plain, brood, bare)", n))
		}
		hasPlain = hasPlain || n == "plain"
		bins = append(bins, t.binary)
	}
	if !hasPlain {
		fail(fmt.Errorf("-targets: the ratios need plain"))
	}

	ctx := context.Background()
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
			spec.Env = []string{"BROOD_WORKERS=" + strconv.Itoa(*workers), "BROOD_LOG_LEVEL=warn"}
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
			busy, ok := target.WaitQuiet(*quiet, 300*time.Millisecond, *quietWait)
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
		busy0, _ := target.MachineTicks()
		srv0, gen0, t0 := target.CPUTicks(pids), selfCPU(), time.Now()
		var res loadgen.Result
		var wrkCPU time.Duration
		var err error
		if *gen == "wrk" {
			res, wrkCPU, err = wrk.Run(ctx, url, runtime.NumCPU(), c, dur)
		} else {
			res, err = loadgen.Run(ctx, loadgen.Config{URL: url, Conns: c, Duration: dur, Fresh: *fresh})
		}
		wall := time.Since(t0).Seconds()
		srv := float64(target.CPUTicks(pids)-srv0) / target.TicksPerSecond / wall
		genCPU := (selfCPU() - gen0 + wrkCPU).Seconds() / wall
		busy1, _ := target.MachineTicks()
		other := float64(busy1-busy0)/target.TicksPerSecond/wall - srv - genCPU
		return run{Conns: c, Target: n, Result: res, ServerCPU: srv, GenCPU: genCPU, OtherCPU: other, StartedBusy: noisy}, err
	}

	if !*asJSON {
		fmt.Printf("throughput: %d CPUs shared by the servers and the generator (%s); %d rounds of %s per target per connection count, alternating %s\n",
			runtime.NumCPU(), genAbout(*gen, *fresh), *rounds, *d, strings.Join(order, ", "))
		for _, n := range order {
			fmt.Printf("  %-5s %s\n", n, targets[n].about)
		}
		fmt.Println("cpu columns are in cores: the server's processes, the generator, and the rest of the machine (the kernel's loopback softirq work, and anything else running)")
	}
	for _, c := range conns {
		if *warmup > 0 {
			for _, n := range order {
				if _, err := measure(n, c, *warmup); err != nil {
					fatal(procs, err)
				}
			}
		}
		if !*asJSON {
			fmt.Printf("\n%d connections\n%-5s %-5s %9s %8s %8s %8s %8s %7s %7s %7s %7s\n", c, "round", "", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "cpu srv", "cpu gen", "cpu oth")
		}
		byRound := map[string][]run{}
		for r := 1; r <= *rounds; r++ {
			for _, n := range order {
				got, err := measure(n, c, *d)
				if err != nil {
					fatal(procs, err)
				}
				got.Round = r
				rep.Runs = append(rep.Runs, got)
				byRound[n] = append(byRound[n], got)
				if !*asJSON {
					res := got.Result
					fmt.Printf("%-5d %-5s %9.0f %8.3f %8.3f %8.3f %8.2f %7d %7.2f %7.2f %7.2f\n", r, n, res.RPS, res.P50, res.P90, res.P99, res.Max, res.Errors.Total(), got.ServerCPU, got.GenCPU, got.OtherCPU)
				}
			}
		}
		for _, n := range order {
			if n == "plain" {
				continue
			}
			rt := ratio{Conns: c, Target: n}
			for i, b := range byRound[n] {
				pl := byRound["plain"][i].Result
				rt.RPS = append(rt.RPS, b.Result.RPS/pl.RPS)
				rt.P99 = append(rt.P99, b.Result.P99/pl.P99)
			}
			rt.RPSSum, rt.P99Sum = stats.Summarize(rt.RPS), stats.Summarize(rt.P99)
			rep.Ratios = append(rep.Ratios, rt)
			if !*asJSON {
				fmt.Printf("%s/plain: req/s ×%.2f (rounds %.2f–%.2f), p99 ×%.2f (rounds %.2f–%.2f)   [targets: req/s ≥ ×1.15, p99 ≤ ×0.50]\n",
					n, rt.RPSSum.Median, rt.RPSSum.Min, rt.RPSSum.Max, rt.P99Sum.Median, rt.P99Sum.Min, rt.P99Sum.Max)
			}
		}
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	}
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
