// Command logs measures what writing the access log to a file costs: the
// throughput of examples/hello with every request logged to access.log
// ($BROOD_LOG_DIR, the agent rotating by size) against the same binary with
// the access log off ($BROOD_LOG_LEVEL=warn: AccessLog checks the level and
// does nothing else), in the same run. Both clusters stay up, and rounds
// alternate between them with the same generator, connections and
// duration, so drift on the machine hits both alike; each round's ratio is
// reported, then their median. Issue 4 asks for a median of at least 0.85.
//
//	cd bench && go run ./logs -conns 50 -rounds 7 -d 5s
//
// Beside req/s it reports the server's CPU time per request (all of the
// cluster's processes), which other work on the shared machine disturbs far
// less than req/s. It takes the benchmarks' lock (target.Exclusive) so it
// does not measure another benchmark, and counts the lines in the log files
// afterwards against the requests answered, so a fast but lossy logger
// cannot pass.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/broodhq/brood/bench/internal/loadgen"
	"github.com/broodhq/brood/bench/internal/stats"
	"github.com/broodhq/brood/bench/internal/target"
)

func main() {
	conns := flag.Int("conns", 50, "concurrent connections, 1 to 1000")
	rounds := flag.Int("rounds", 7, "rounds, 1 to 50")
	d := flag.Duration("d", 5*time.Second, "duration of each run, 1s to 1m")
	workers := flag.Int("workers", 2, "brood workers")
	maxSize := flag.String("max-size", "50MB", "$BROOD_LOG_MAX_SIZE of the logging cluster, so rotations happen during the runs")
	bin := flag.String("bin", "results/bin", "directory the server binary is built into")
	quiet := flag.Float64("quiet", 0.3, "before each run, wait until the machine is busy on fewer than this many cores (0: don't wait)")
	flag.Parse()
	switch {
	case *conns < 1 || *conns > 1000:
		fail(fmt.Errorf("-conns %d: want 1 to 1000", *conns))
	case *rounds < 1 || *rounds > 50:
		fail(fmt.Errorf("-rounds %d: want 1 to 50", *rounds))
	case *d < time.Second || *d > time.Minute:
		fail(fmt.Errorf("-d %s: want 1s to 1m", *d))
	case *workers < 1 || *workers > 64:
		fail(fmt.Errorf("-workers %d: want 1 to 64", *workers))
	}

	ctx := context.Background()
	release, err := target.Exclusive(ctx, 10*time.Minute)
	if err != nil {
		fmt.Fprintln(os.Stderr, "logs:", err, "(running anyway; the numbers are shared with it)")
	}
	defer release()
	paths, err := target.Build(ctx, *bin, "hello")
	if err != nil {
		fail(err)
	}
	dir, err := os.MkdirTemp("", "brood-bench-logs-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)

	common := []string{"BROOD_WORKERS=" + strconv.Itoa(*workers)}
	specs := []target.Spec{
		{Name: "off", Path: paths["hello"], Env: append(common, "BROOD_LOG_LEVEL=warn")},
		{Name: "file", Path: paths["hello"], Env: append(common, "BROOD_LOG_LEVEL=info",
			"BROOD_LOG_DIR="+dir, "BROOD_LOG_MAX_SIZE="+*maxSize, "BROOD_LOG_KEEP=0")},
	}
	procs := map[string]*target.Process{}
	stopAll := func() {
		for _, p := range procs {
			if err := p.Stop(30 * time.Second); err != nil {
				fmt.Fprintln(os.Stderr, "logs:", err)
			}
		}
	}
	for _, spec := range specs {
		addr, err := target.FreeAddr()
		if err == nil {
			var p *target.Process
			p, err = target.Start(spec, addr)
			if p != nil {
				procs[spec.Name] = p
			}
		}
		if err == nil {
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err = procs[spec.Name].WaitServing(wctx, "/", time.Millisecond)
			cancel()
		}
		if err != nil {
			stopAll()
			fail(err)
		}
	}

	fmt.Printf("logs: examples/hello, %d workers, %d connections, %d rounds of %s, %d CPUs shared with the generator\n",
		*workers, *conns, *rounds, *d, runtime.NumCPU())
	fmt.Printf("  off   access log off ($BROOD_LOG_LEVEL=warn)\n  file  access log to %s/access.log, rotated at %s\n", dir, *maxSize)
	fmt.Printf("%-5s %-5s %9s %8s %8s %7s %8s\n", "round", "", "req/s", "p50 ms", "p99 ms", "errors", "µs/req")
	var logged int64 // 2xx answers from the logging cluster, warm-up included
	run := func(name string, dur time.Duration) (loadgen.Result, float64) {
		if *quiet > 0 {
			target.WaitQuiet(*quiet, 300*time.Millisecond, 30*time.Second)
		}
		pids := target.Tree(procs[name].PID())
		cpu0 := target.CPUTicks(pids)
		res, err := loadgen.Run(ctx, loadgen.Config{URL: "http://" + procs[name].Addr + "/", Conns: *conns, Duration: dur})
		cpu := float64(target.CPUTicks(pids)-cpu0) / target.TicksPerSecond
		if err != nil {
			stopAll()
			fail(err)
		}
		if name == "file" {
			logged += res.OK
		}
		return res, cpu / float64(max(res.OK, 1)) * 1e6
	}
	run("off", time.Second) // warm-up, not reported
	run("file", time.Second)
	var ratios, cpuRatios []float64
	for r := 1; r <= *rounds; r++ {
		var rps, us [2]float64
		for i, name := range []string{"off", "file"} {
			res, perReq := run(name, *d)
			rps[i], us[i] = res.RPS, perReq
			fmt.Printf("%-5d %-5s %9.0f %8.3f %8.3f %7d %8.1f\n", r, name, res.RPS, res.P50, res.P99, res.Errors.Total(), perReq)
		}
		ratios = append(ratios, rps[1]/rps[0])
		cpuRatios = append(cpuRatios, us[0]/us[1])
	}
	stopAll()

	s := stats.Summarize(ratios)
	fmt.Printf("file/off: req/s ×%.3f median (rounds %.3f–%.3f)   [target: ≥ ×0.85]\n", s.Median, s.Min, s.Max)
	c := stats.Summarize(cpuRatios)
	fmt.Printf("file/off: server CPU per request, off/file ×%.3f median (rounds %.3f–%.3f): the throughput ratio a CPU-bound server would see\n", c.Median, c.Min, c.Max)
	lines, files, err := countLines(dir)
	if err != nil {
		fail(err)
	}
	// A request cut off at the end of a run may be logged without its
	// answer being counted: up to one per connection per run.
	fmt.Printf("access log: %d lines in %d files (live and rotated) for %d answers counted by the generator\n", lines, files, logged)
	if lines < logged {
		fail(fmt.Errorf("%d answered requests are missing from the access log", logged-lines))
	}
}

// countLines counts the lines of every access log file in dir.
func countLines(dir string) (lines int64, files int, err error) {
	names, err := filepath.Glob(filepath.Join(dir, "access*.log"))
	if err != nil {
		return 0, 0, err
	}
	if len(names) == 0 {
		return 0, 0, errors.New("no access log written: is the logging cluster logging?")
	}
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			return 0, 0, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if !strings.Contains(sc.Text(), `"msg":"request"`) {
				f.Close()
				return 0, 0, fmt.Errorf("%s: not an access record: %q", name, sc.Text())
			}
			lines++
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return 0, 0, err
		}
	}
	return lines, len(names), nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "logs:", err)
	os.Exit(1)
}
