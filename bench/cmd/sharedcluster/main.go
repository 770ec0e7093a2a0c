// Command sharedcluster measures brood's balancing modes through a real
// cluster: examples-like brood binaries (cmd/mixedapp) with -workers
// workers, started once per mode and round, modes alternating in the same
// run. Two loads each time:
//
//   - mixed: -clients client loops, 10% of requests GET /slow (20 ms of CPU),
//     the rest GET /; the fast requests' p50, p99 and max, with fresh
//     connections and then keep-alive ones;
//
//   - hello: loadgen's throughput of GET / over -conns keep-alive
//     connections, then over a new connection per request (hello-new).
//
//     cd bench && go run ./cmd/sharedcluster -rounds 2
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/broodhq/brood/bench/internal/loadgen"
	"github.com/broodhq/brood/bench/internal/mixedload"
	"github.com/broodhq/brood/bench/internal/target"
)

func main() {
	workers := flag.Int("workers", 4, "brood workers")
	clients := flag.Int("clients", 16, "client loops of the mixed load")
	conns := flag.Int("conns", 50, "connections of the hello load")
	d := flag.Duration("d", 3*time.Second, "duration of each load")
	rounds := flag.Int("rounds", 2, "rounds of each mode")
	slowShare := flag.Float64("slow", 0.1, "share of the mixed load's requests that burn 20 ms of CPU")
	modesFlag := flag.String("modes", "hash,shared", "balancing modes, comma-separated")
	flag.Parse()
	modes := splitModes(*modesFlag)
	if *workers < 1 || *workers > 64 || *clients < 1 || *clients > 512 || *conns < 1 || *conns > 1000 ||
		*rounds < 1 || *rounds > 10 || *d <= 0 || *d > time.Minute || len(modes) == 0 {
		fmt.Fprintln(os.Stderr, "sharedcluster: want 1-64 workers, 1-512 clients, 1-1000 conns, 1-10 rounds, a duration up to 1m, some modes")
		os.Exit(2)
	}
	ctx, stop := context.WithTimeout(context.Background(), 30*time.Minute)
	defer stop()
	release, err := target.Exclusive(ctx, 3*time.Minute)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sharedcluster: %v; running anyway\n", err)
	}
	defer release()
	dir, err := os.MkdirTemp("", "sharedcluster")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	paths, err := target.Build(ctx, filepath.Join(dir, "bin"), "mixedapp")
	if err != nil {
		fail(err)
	}
	fmt.Printf("brood, %d workers, %d CPUs; mixed: %d clients, %.0f%% burn 20ms CPU; hello: %d keep-alive conns; %s per load\n",
		*workers, runtime.NumCPU(), *clients, 100**slowShare, *conns, *d)
	fmt.Printf("%-6s %-7s %-10s %9s %9s %9s %10s\n", "round", "mode", "load", "p50 ms", "p99 ms", "max ms", "req/s")
	for round := 1; round <= *rounds; round++ {
		for _, mode := range modes {
			if err := measure(ctx, paths["mixedapp"], mode, round, *workers, *clients, *conns, *d, *slowShare); err != nil {
				fail(err)
			}
		}
	}
}

func splitModes(s string) []string {
	var out []string
	for m := range strings.SplitSeq(s, ",") {
		if m != "" {
			out = append(out, m)
		}
	}
	return out
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "sharedcluster:", err)
	os.Exit(1)
}

// measure starts one cluster in mode and runs the loads against it.
func measure(ctx context.Context, path, mode string, round, workers, clients, conns int, d time.Duration, slowShare float64) error {
	addr, err := target.FreeAddr()
	if err != nil {
		return err
	}
	p, err := target.Start(target.Spec{Name: "brood " + mode, Path: path, DiscardOutput: true,
		Env: []string{fmt.Sprintf("BROOD_WORKERS=%d", workers), "BROOD_BALANCE=" + mode, "BROOD_LOG_LEVEL=warn", "BROOD_CONTROL_SOCKET=-"}}, addr)
	if err != nil {
		return err
	}
	defer func() {
		if err := p.Stop(15 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, "sharedcluster:", err)
		}
	}()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, err = p.WaitServing(wctx, "/", 20*time.Millisecond)
	cancel()
	if err != nil {
		return err
	}
	// Every worker up, and with balance shared every worker told its
	// share (heartbeats come every second).
	time.Sleep(2 * time.Second)
	for _, keepAlive := range []bool{false, true} {
		r, err := mixedload.Run(addr, clients, d, slowShare, keepAlive)
		if err != nil {
			return fmt.Errorf("%s: %w", mode, err)
		}
		load := "mix-fresh"
		if keepAlive {
			load = "mix-keep"
		}
		fmt.Printf("%-6d %-7s %-10s %9.2f %9.2f %9.2f %10.0f\n", round, mode, load, ms(r.P50), ms(r.P99), ms(r.Max), r.FastPerSec)
	}
	// Keep-alive, then a connection per request: each new connection on
	// the shared socket wakes every worker (Go's netpoller registers
	// listeners without EPOLLEXCLUSIVE), which the second shows.
	for _, fresh := range []bool{false, true} {
		load := "hello"
		if fresh {
			load = "hello-new"
		}
		res, err := loadgen.Run(ctx, loadgen.Config{URL: "http://" + addr + "/", Conns: conns, Duration: d, Fresh: fresh})
		if err != nil {
			return fmt.Errorf("%s: %s: %w", mode, load, err)
		}
		if n := res.Errors.Total(); n > 0 {
			return fmt.Errorf("%s: %s: %d requests failed", mode, load, n)
		}
		fmt.Printf("%-6d %-7s %-10s %9.2f %9.2f %9.2f %10.0f\n", round, mode, load, res.P50, res.P99, res.Max, res.RPS)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
