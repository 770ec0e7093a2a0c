// Command messenger measures brood's messenger on a real cluster: a master,
// the agent and the workers (one per CPU unless -workers says otherwise),
// on this machine's cores; worker 1 does the measuring.
//
//	cd bench && go run ./messenger -rounds 5
//
// one-way: the worker sends -n small messages to the agent with
// SendToAgent; the rate is n over the time from the
// first send until the agent has handled the last (a CallAgent queued
// behind them answers with the agent's count). To stay within the bounded
// queues the worker keeps at most two windows of -window messages in
// flight, each closed by such a call.
//
// round trip: the worker makes -calls sequential CallAgent calls with a
// small argument and reply, and reports the latency percentiles.
//
// Each is repeated -rounds times; the summary gives the median round. With
// -cpuprofile DIR, every process writes DIR/ROLE.pprof.
//
// -compare runs each round twice, on fresh clusters: over the direct
// channels (worker → agent → worker) and over the route through the master
// (BROOD_MESSENGER_RELAY=1), with both baselines beside the direct one,
// and prints the medians side by side:
//
//	cd bench && go run ./messenger -compare -rounds 5 -n 500000
//
// -baseline alternates each round trip round with a round through the same
// four hops between three bare Go processes (relay.go): on a shared machine
// the floor moves with the load from one second to the next, so a latency
// means little without the floor measured beside it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/broodhq/brood/agent"
	"github.com/broodhq/brood/app"
	"github.com/broodhq/brood/bench/internal/target"
	"github.com/broodhq/brood/framework"
	"github.com/broodhq/brood/messenger"
)

var (
	n       = flag.Int("n", 2_000_000, "messages per one-way round")
	window  = flag.Int("window", 100_000, "messages between two flow-control calls")
	calls   = flag.Int("calls", 20_000, "calls per round-trip round")
	rounds  = flag.Int("rounds", 5, "rounds of each")
	profDir = flag.String("cpuprofile", "", "directory for a CPU profile of every process")
	workers = flag.Int("workers", 0, "workers (0: brood's default, one per CPU); worker 1 runs the benchmark")
	procs   = flag.String("procs", "", "GOMAXPROCS by role for experiments, e.g. master=1,agent=1 (default: brood's)")
	base    = flag.Bool("baseline", false, "alternate round trip rounds with rounds through a bare 4-hop relay of three Go processes, and a bare 2-hop ping-pong")
	cmp     = flag.Bool("compare", false, "alternate rounds on the direct channels and on the route through the master (BROOD_MESSENGER_RELAY=1), each a fresh cluster, with both bare baselines")
)

func main() {
	if relayChild() {
		return
	}
	flag.Parse()
	role := os.Getenv("BROOD_ROLE")
	if *cmp && role == "" && os.Getenv("BENCH_INNER") == "" {
		release, err := target.Exclusive(context.Background(), 20*time.Minute)
		if err != nil {
			fmt.Printf("note: run without the benchmark lock, CPUs possibly shared: %v\n", err)
		}
		err = compare()
		release()
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}

	if role == "" {
		role = "master"
	}
	for _, kv := range strings.Split(*procs, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == role {
			n, _ := strconv.Atoi(v)
			runtime.GOMAXPROCS(n)
		}
	}
	if role == "master" && os.Getenv("BENCH_INNER") == "" {
		// One benchmark at a time on this machine (see target.Exclusive).
		release, err := target.Exclusive(context.Background(), 20*time.Minute)
		if err != nil {
			fmt.Printf("note: run without the benchmark lock, CPUs possibly shared: %v\n", err)
		}
		defer release()
	}
	if *profDir != "" {
		f, err := os.Create(filepath.Join(*profDir, role+".pprof"))
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	opts := []framework.Option{}
	if *workers > 0 {
		opts = append(opts, framework.WithWorkers(*workers))
	}
	err := framework.Run(http.NotFoundHandler(), append(opts,
		framework.WithAddr("127.0.0.1:0"),
		framework.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
		framework.WithAgent(setupAgent),
		framework.WithApp(setupApp),
	)...)
	if err != nil {
		os.Exit(1)
	}
}

func setupAgent(a *agent.Agent) error {
	m := a.Messenger()
	var count atomic.Int64
	m.On("m", func(messenger.Message) { count.Add(1) })
	// A Handle function starts after the messages before it were handled
	// (and runs alongside those after it).
	m.Handle("count", func(context.Context, messenger.Message) (any, error) { return count.Load(), nil })
	m.Handle("echo", func(_ context.Context, msg messenger.Message) (any, error) { return msg.Data, nil })
	return nil
}

func setupApp(a *app.App) error {
	if a.Slot() != 1 {
		return nil
	}
	a.OnReady(func() {
		go func() {
			if err := run(a.Messenger()); err != nil {
				fmt.Fprintln(os.Stderr, "bench:", err)
			}
			// Done: stop the cluster.
			_ = syscall.Kill(os.Getppid(), syscall.SIGTERM)
		}()
	})
	return nil
}

func run(m *messenger.Messenger) error {
	fmt.Printf("messenger benchmark: %d rounds; one-way %d messages, round trip %d calls; GOMAXPROCS of this worker %d\n",
		*rounds, *n, *calls, runtime.GOMAXPROCS(0))
	var rates []float64
	for r := range *rounds {
		rate, err := oneWay(m)
		if err != nil {
			return err
		}
		rates = append(rates, rate)
		fmt.Printf("one-way  round %d: %9.0f messages/s\n", r+1, rate)
	}
	var p50s, p90s, p99s, base50s []time.Duration
	var ratios []float64
	for r := range *rounds {
		if *base {
			lat, err := baseline(*calls)
			if err != nil {
				return fmt.Errorf("baseline: %w", err)
			}
			base50s = append(base50s, pct(lat, 50))
			fmt.Printf("bare relay round %d: p50 %v  p90 %v  p99 %v\n", r+1, pct(lat, 50), pct(lat, 90), pct(lat, 99))
			// The ping-pong and the CallAgent round trip alternate in
			// blocks of 500 within one round, so that both see the same
			// machine: on shared cores the floor moves from one second
			// to the next.
			pp, cl, err := interleaved(m, *calls)
			if err != nil {
				return fmt.Errorf("ping-pong: %w", err)
			}
			fmt.Printf("bare ping-pong round %d: p50 %v  p90 %v  p99 %v\n", r+1, pct(pp, 50), pct(pp, 90), pct(pp, 99))
			p50, p90, p99 := pct(cl, 50), pct(cl, 90), pct(cl, 99)
			p50s, p90s, p99s = append(p50s, p50), append(p90s, p90), append(p99s, p99)
			ratios = append(ratios, float64(p50)/float64(pct(pp, 50)))
			fmt.Printf("round trip round %d: p50 %v  p90 %v  p99 %v\n", r+1, p50, p90, p99)
			fmt.Printf("round trip / ping-pong round %d: p50 x%.2f  p99 x%.2f\n", r+1, float64(p50)/float64(pct(pp, 50)), float64(p99)/float64(pct(pp, 99)))
			continue
		}
		lat, err := roundTrip(m)
		if err != nil {
			return err
		}
		p50, p90, p99 := pct(lat, 50), pct(lat, 90), pct(lat, 99)
		p50s, p90s, p99s = append(p50s, p50), append(p90s, p90), append(p99s, p99)
		fmt.Printf("round trip round %d: p50 %v  p90 %v  p99 %v\n", r+1, p50, p90, p99)
	}
	slices.Sort(rates)
	fmt.Printf("\nmedian of %d rounds: one-way %.0f messages/s (min %.0f, max %.0f); CallAgent round trip p50 %v, p90 %v, p99 %v\n",
		*rounds, rates[len(rates)/2], rates[0], rates[len(rates)-1], median(p50s), median(p90s), median(p99s))
	if *base {
		fmt.Printf("bare 4-hop relay alongside: p50 %v (median of rounds)\n", median(base50s))
		slices.Sort(ratios)
		fmt.Printf("round trip / bare ping-pong, interleaved: p50 x%.2f (median of rounds; min x%.2f, max x%.2f)\n",
			ratios[len(ratios)/2], ratios[0], ratios[len(ratios)-1])
	}
	return nil
}

func oneWay(m *messenger.Messenger) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var base int
	if err := m.CallAgent(ctx, "count", nil, &base); err != nil {
		return 0, err
	}
	// Each window ends with a call; before sending a window, the call two
	// windows back must have returned, so at most two are in flight.
	type pending struct {
		want int
		done chan error
	}
	var inflight []pending
	wait := func(s pending) error { return <-s.done }
	start := time.Now()
	for sent := 0; sent < *n; {
		if len(inflight) == 2 {
			if err := wait(inflight[0]); err != nil {
				return 0, err
			}
			inflight = inflight[1:]
		}
		w := min(*window, *n-sent)
		for i := range w {
			if err := m.SendToAgent("m", sent+i); err != nil {
				return 0, err
			}
		}
		sent += w
		s := pending{want: base + sent, done: make(chan error, 1)}
		go func() {
			var got int
			err := m.CallAgent(ctx, "count", nil, &got)
			if err == nil && got < s.want {
				err = fmt.Errorf("agent counted %d, want at least %d: messages lost", got, s.want)
			}
			s.done <- err
		}()
		inflight = append(inflight, s)
	}
	for _, s := range inflight {
		if err := wait(s); err != nil {
			return 0, err
		}
	}
	return float64(*n) / time.Since(start).Seconds(), nil
}

func roundTrip(m *messenger.Messenger) ([]time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lat := make([]time.Duration, 0, *calls)
	var reply int
	for i := range *calls + 1000 {
		t0 := time.Now()
		if err := m.CallAgent(ctx, "echo", i, &reply); err != nil {
			return nil, err
		}
		if i >= 1000 { // warm-up left out
			lat = append(lat, time.Since(t0))
		}
	}
	return lat, nil
}

// interleaved alternates blocks of 500 CallAgent round trips with blocks
// of 500 bare ping-pongs (echoPeer), calls of each in all after 1000 of
// each to warm up, and returns the latencies of each: both see the same
// machine, and each runs warm within its block, as a busy channel does.
func interleaved(m *messenger.Messenger, calls int) (pp, cl []time.Duration, err error) {
	c, stop, err := echoPeer()
	if err != nil {
		return nil, nil, err
	}
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b := make([]byte, 40)
	var reply int
	const block = 500
	for i := 0; i < calls+1000; i += block {
		for range block {
			t0 := time.Now()
			if err := pingOnce(c, b); err != nil {
				return nil, nil, err
			}
			if i >= 1000 {
				pp = append(pp, time.Since(t0))
			}
		}
		for range block {
			t0 := time.Now()
			if err := m.CallAgent(ctx, "echo", i, &reply); err != nil {
				return nil, nil, err
			}
			if i >= 1000 {
				cl = append(cl, time.Since(t0))
			}
		}
	}
	return pp, cl, nil
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)*p/100]
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
