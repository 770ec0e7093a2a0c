// Command rss measures the memory of a whole idle server: it starts
// examples/hello (master + agent + N workers) and cmd/plain, waits for the
// first served request and a settling pause, and sums VmRSS over the server
// and its children (found by scanning /proc for their parent pid). It then
// sends a short burst of load, lets the server settle again and measures
// once more, since a Go heap grows under load and is returned slowly.
//
//	cd bench && go run ./cmd/rss
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/broodhq/brood/bench/internal/loadgen"
	"github.com/broodhq/brood/bench/internal/target"
)

type sample struct {
	Target string       `json:"target"`
	When   string       `json:"when"` // "idle" or "after load"
	Procs  []target.Mem `json:"procs"`
	RSS    int64        `json:"rss_kib"` // summed VmRSS
	PSS    int64        `json:"pss_kib"` // summed Pss
}

func main() {
	workers := flag.Int("workers", 2, "brood workers")
	settle := flag.Duration("settle", 2*time.Second, "pause after ready (and after load) before measuring, at most 1m")
	burst := flag.Duration("load", 3*time.Second, "load burst before the second measurement (0: none), at most 1m")
	bin := flag.String("bin", "results/bin", "directory the server binaries are built into")
	asJSON := flag.Bool("json", false, "print the report as JSON")
	flag.Parse()
	if *settle < 0 || *settle > time.Minute || *burst < 0 || *burst > time.Minute {
		fail(fmt.Errorf("-settle and -load: want 0s to 1m"))
	}

	// Ctrl-C or SIGTERM ends the run; the servers in use are still stopped.
	// One benchmark at a time on this machine: Session takes the lock.
	ctx, done := target.Session("rss")
	defer done()
	specs, err := target.HelloAndPlain(ctx, *bin, *workers)
	if err != nil {
		fail(err)
	}
	var out []sample
	for _, s := range specs {
		got, err := measure(ctx, s, *settle, *burst)
		if err != nil {
			fail(err)
		}
		out = append(out, got...)
	}

	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(out)
		return
	}
	for _, s := range out {
		fmt.Printf("%s, %s: VmRSS %.1f MiB summed (Pss %.1f MiB) over %d processes\n", s.Target, s.When, mib(s.RSS), mib(s.PSS), len(s.Procs))
		for _, p := range s.Procs {
			fmt.Printf("    %-8d %-20s VmRSS %6.1f MiB  Pss %6.1f MiB\n", p.PID, p.Name, mib(p.RSS), mib(p.PSS))
		}
	}
}

func measure(ctx context.Context, s target.Spec, settle, burst time.Duration) (out []sample, err error) {
	addr, err := target.FreeAddr()
	if err != nil {
		return nil, err
	}
	p, err := target.Start(s, addr)
	if err != nil {
		return nil, err
	}
	defer func() {
		if serr := p.Stop(5 * time.Second); serr != nil && err == nil {
			err = serr
		}
	}()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := p.WaitServing(wctx, "/", time.Millisecond); err != nil {
		return nil, err
	}
	time.Sleep(settle)
	idle, err := snapshot(s.Name, "idle", p.PID())
	if err != nil {
		return nil, err
	}
	out = append(out, idle)
	if burst == 0 {
		return out, nil
	}
	res, err := loadgen.Run(ctx, loadgen.Config{URL: "http://" + addr + "/", Conns: 50, Duration: burst})
	if err != nil {
		return nil, err
	}
	if res.OK == 0 {
		return nil, fmt.Errorf("%s: load burst got no 2xx response: %+v", s.Name, res.Errors)
	}
	time.Sleep(settle)
	after, err := snapshot(s.Name, fmt.Sprintf("after %s of load at 50 connections + %s", burst, settle), p.PID())
	if err != nil {
		return nil, err
	}
	return append(out, after), nil
}

func snapshot(name, when string, pid int) (sample, error) {
	s := sample{Target: name, When: when}
	for _, pid := range target.Tree(pid) {
		m, err := target.Memory(pid)
		if err != nil {
			return s, fmt.Errorf("%s: memory of pid %d: %w", name, pid, err)
		}
		s.Procs = append(s.Procs, m)
		s.RSS += m.RSS
		s.PSS += m.PSS
	}
	return s, nil
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

func fail(err error) {
	fmt.Fprintln(os.Stderr, "rss:", err)
	os.Exit(1)
}
