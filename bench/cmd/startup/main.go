// Command startup measures exec to first served request: it execs a built
// server, connects and sends GET / until a 200 comes back, notes the time
// since exec, stops the server by pid and does it again. examples/hello
// (master + agent + 2 workers) and cmd/plain alternate, run after run.
//
//	cd bench && go run ./cmd/startup -n 20
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/broodhq/brood/bench/internal/stats"
	"github.com/broodhq/brood/bench/internal/target"
)

type report struct {
	Runs    int                      `json:"runs"`
	Workers int                      `json:"workers"`
	Poll    string                   `json:"poll"`
	Ms      map[string]stats.Summary `json:"ms"`      // by target
	Samples map[string][]float64     `json:"samples"` // ms, in run order
	Busy    int                      `json:"runs_started_busy"`
}

func main() {
	n := flag.Int("n", 20, "runs per target, 1 to 200")
	workers := flag.Int("workers", 2, "brood workers")
	poll := flag.Duration("poll", 250*time.Microsecond, "pause between connection attempts while the server is not up")
	bin := flag.String("bin", "results/bin", "directory the server binaries are built into")
	quiet := flag.Float64("quiet", 0.3, "before each run, wait (up to -quiet-wait) until the machine is busy on fewer than this many cores (0: don't wait)")
	quietWait := flag.Duration("quiet-wait", 3*time.Second, "longest wait for a quiet machine before a run, at most 1m")
	asJSON := flag.Bool("json", false, "print the report as JSON")
	flag.Parse()
	if *n < 1 || *n > 200 {
		fail(fmt.Errorf("-n %d: want 1 to 200", *n))
	}
	if *quietWait < 0 || *quietWait > time.Minute {
		fail(fmt.Errorf("-quiet-wait %s: want 0s to 1m", *quietWait))
	}

	// Ctrl-C or SIGTERM ends the run; the servers in use are still stopped.
	// One benchmark at a time on this machine: Session takes the lock.
	ctx, done := target.Session("startup")
	defer done()
	specs, err := target.HelloAndPlain(ctx, *bin, *workers)
	if err != nil {
		fail(err)
	}

	rep := report{Runs: *n, Workers: *workers, Poll: poll.String(), Ms: map[string]stats.Summary{}, Samples: map[string][]float64{}}
	// One unreported run each first: the first exec after a build reads
	// the binary from disk.
	for i := -1; i < *n; i++ {
		for _, s := range specs {
			if *quiet > 0 {
				if _, ok := target.WaitQuietContext(ctx, *quiet, 200*time.Millisecond, *quietWait); !ok && i >= 0 {
					rep.Busy++
				}
			}
			d, err := once(ctx, s, *poll)
			if err != nil {
				fail(err)
			}
			if i >= 0 {
				rep.Samples[s.Name] = append(rep.Samples[s.Name], float64(d)/float64(time.Millisecond))
			}
		}
	}
	for name, xs := range rep.Samples {
		rep.Ms[name] = stats.Summarize(xs)
	}

	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
		return
	}
	fmt.Printf("exec to first 200 response, %d runs each, alternating; brood = examples/hello, agent + %d workers\n", *n, *workers)
	if rep.Busy > 0 {
		fmt.Printf("%d of %d runs started with the machine busy on more than %.2f cores (other work)\n", rep.Busy, 2**n, *quiet)
	}
	fmt.Printf("%-6s %8s %8s %8s %8s\n", "", "median", "p90", "min", "max")
	for _, s := range specs {
		m := rep.Ms[s.Name]
		fmt.Printf("%-6s %6.1fms %6.1fms %6.1fms %6.1fms\n", s.Name, m.Median, m.P90, m.Min, m.Max)
	}
}

// once starts s, waits for its first 200 and stops it.
func once(ctx context.Context, s target.Spec, poll time.Duration) (time.Duration, error) {
	addr, err := target.FreeAddr()
	if err != nil {
		return 0, err
	}
	p, err := target.Start(s, addr)
	if err != nil {
		return 0, err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	d, werr := p.WaitServing(wctx, "/", poll)
	cancel()
	if err := p.Stop(5 * time.Second); err != nil && werr == nil {
		werr = err
	}
	return d, werr
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "startup:", err)
	os.Exit(1)
}
