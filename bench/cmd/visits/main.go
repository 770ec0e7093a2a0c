// Command visits measures examples/hello's /visits (one CallAgent per
// request) against one net/http + chi process doing a Redis INCR per
// request on a local redis-server (cmd/storeapp with STOREAPP=redis), in
// the same run, with the same generator (wrk), connections and duration;
// and examples/hello again with the agent's traffic on the route through
// the master (BROOD_MESSENGER_RELAY=1), as brood had it before direct
// channels. Rounds alternate the targets, and the order within a round.
// For brood it reports the master's CPU during each run, in cores: with
// direct channels the master is off the path of every call.
//
//	cd bench && go run ./cmd/visits -rounds 3 -d 5s -conns 64
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/broodhq/brood/bench/internal/loadgen"
	"github.com/broodhq/brood/bench/internal/redisserver"
	"github.com/broodhq/brood/bench/internal/stats"
	"github.com/broodhq/brood/bench/internal/target"
	"github.com/broodhq/brood/bench/internal/wrk"
)

var (
	rounds  = flag.Int("rounds", 3, "rounds; each measures every target")
	dur     = flag.Duration("d", 5*time.Second, "duration of each measurement")
	conns   = flag.Int("conns", 64, "connections")
	workers = flag.Int("workers", 2, "brood workers")
)

func main() {
	flag.Parse()
	ctx, done := target.Session("visits")
	defer done()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "visits:", err)
		done()
		os.Exit(1)
	}
}

type server struct {
	name  string
	path  string // URL path
	proc  *target.Process
	extra []int // other pids whose CPU counts (redis-server)
}

func run(ctx context.Context) error {
	paths, err := target.Build(ctx, "results/bin", "hello", "storeapp")
	if err != nil {
		return err
	}
	rs, err := redisserver.Start("visits")
	if err != nil {
		return err
	}
	defer rs.Stop()
	w := fmt.Sprint("BROOD_WORKERS=", *workers)
	// Two instances of hello run at once: each its own store file.
	dataDir, err := os.MkdirTemp("", "visits-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dataDir)
	data := func(name string) string { return "BROOD_DATA_DIR=" + dataDir + "/" + name }
	specs := []struct {
		spec target.Spec
		path string
	}{
		{target.Spec{Name: "brood", Path: paths["hello"], DiscardOutput: true, Env: []string{w, "BROOD_LOG_LEVEL=warn", data("brood")}}, "/visits"},
		{target.Spec{Name: "relay", Path: paths["hello"], DiscardOutput: true, Env: []string{w, "BROOD_LOG_LEVEL=warn", data("relay"), "BROOD_MESSENGER_RELAY=1"}}, "/visits"},
		{target.Spec{Name: "redis", Path: paths["storeapp"], DiscardOutput: true, Env: []string{"STOREAPP=redis", "STOREAPP_REDIS=" + rs.Addr}}, "/incr"},
	}
	var servers []*server
	for _, s := range specs {
		p, err := target.StartServing(ctx, s.spec, s.path)
		if err != nil {
			return err
		}
		defer p.Stop(10 * time.Second)
		srv := &server{name: s.spec.Name, path: s.path, proc: p}
		if srv.name == "redis" {
			srv.extra = []int{rs.PID()}
		}
		servers = append(servers, srv)
	}
	fmt.Printf("visits: %d rounds × %s, %d connections, wrk; brood (examples/hello /visits) %d workers; redis-server %s\n",
		*rounds, *dur, *conns, *workers, rs.Version)
	ratios := map[string][]float64{}
	masterCPU := map[string][]float64{}
	for round := range *rounds {
		order := slices.Clone(servers)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		rps := map[string]float64{}
		for _, s := range order {
			res, master, tree, err := s.measure(ctx)
			if err != nil {
				return err
			}
			rps[s.name] = res.RPS
			line := fmt.Sprintf("round %d %-6s %8.0f req/s  p50 %5.2f ms  p99 %6.2f ms  errors %d  CPU %.2f cores",
				round+1, s.name, res.RPS, res.P50, res.P99, res.Errors.Total(), tree)
			if s.name != "redis" {
				line += fmt.Sprintf("  (master %.3f cores)", master)
				masterCPU[s.name] = append(masterCPU[s.name], master)
			}
			fmt.Println(line)
		}
		for _, n := range []string{"brood", "relay"} {
			ratios[n] = append(ratios[n], rps[n]/rps["redis"])
		}
		fmt.Printf("round %d brood/redis %.2f×, relay/redis %.2f×, brood/relay %.2f×\n",
			round+1, rps["brood"]/rps["redis"], rps["relay"]/rps["redis"], rps["brood"]/rps["relay"])
	}
	fmt.Println()
	for _, n := range []string{"brood", "relay"} {
		s := stats.Summarize(ratios[n])
		fmt.Printf("%-6s /visits vs redis INCR req/s: median %.2f× (min %.2f, max %.2f); master CPU median %.3f cores\n",
			n, s.Median, s.Min, s.Max, stats.Median(masterCPU[n]))
	}
	return nil
}

// measure runs wrk against s and returns the result, the master's CPU and
// the whole target's CPU during the run, in cores.
func (s *server) measure(ctx context.Context) (loadgen.Result, float64, float64, error) {
	tree := append(target.Tree(s.proc.PID()), s.extra...)
	m0, t0 := target.CPUTicks([]int{s.proc.PID()}), target.CPUTicks(tree)
	start := time.Now()
	res, _, err := wrk.Run(ctx, "http://"+s.proc.Addr+s.path, runtime.NumCPU(), *conns, *dur)
	wall := time.Since(start)
	if err != nil {
		return res, 0, 0, fmt.Errorf("%s: %w", s.name, err)
	}
	m1, t1 := target.CPUTicks([]int{s.proc.PID()}), target.CPUTicks(tree)
	return res, target.Cores(m1-m0, wall), target.Cores(t1-t0, wall), nil
}
