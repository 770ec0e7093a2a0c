// Command chain measures what brood's default middleware chain costs in
// throughput: hello on real 2-worker clusters with no middleware
// (framework.WithMiddleware()) and with the default chain, in alternating
// rounds of the same run, on 127.0.0.1 only.
//
//	cd bench/chain && go run . -rounds 7 -d 3s
//
// See README.md for what is measured and how to read it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// The modes every round runs; bare is the baseline the others are divided by.
var modes = []struct{ name, label string }{
	{"bare", "no middleware"},
	{"default", "default chain, access log to stderr redirected to a file"},
	{"discard", "default chain, access log JSON-formatted into io.Discard"},
	{"header", "no middleware, but the handler sets one response header (a reference, not a target)"},
}

// target is the ratio to bare the issue asks of the default chain; the
// header mode is only there to show what one response header costs.
func hasTarget(mode string) bool { return mode != "header" }

func main() {
	if name := os.Getenv(envApp); name != "" {
		runApp(name)
	}
	rounds := flag.Int("rounds", 7, "rounds; each runs every mode once, in alternating order (1 to 100)")
	d := flag.Duration("d", 3*time.Second, "load per mode per round (100ms to 1m)")
	warm := flag.Duration("warmup", 2*time.Second, "load per mode before the first round, not counted")
	conns := flag.Int("c", 50, "concurrent kept-alive connections (1 to 1000)")
	workers := flag.Int("workers", 2, "workers per cluster (1 to 64)")
	logDir := flag.String("logdir", "", "where the clusters' stderr goes (default: a temporary directory, removed at the end)")
	profile := flag.String("profile", "", "write a CPU profile of every worker into this directory")
	quiet := flag.Float64("quiet", 0.3, "before each run, wait (up to 30s) until fewer than this many cores are busy (0: don't wait)")
	noisy := flag.Float64("noisy", 0.3, "a round in which anything else used more than this many cores is noisy")
	flag.Parse()
	if *rounds < 1 || *rounds > 100 || *d < 100*time.Millisecond || *d > time.Minute ||
		*warm < 0 || *warm > time.Minute || *conns < 1 || *conns > 1000 || *workers < 1 || *workers > 64 {
		fmt.Fprintln(os.Stderr, "chain: a flag is out of range; see -h")
		os.Exit(2)
	}
	if err := run(*rounds, *d, *warm, *conns, *workers, *logDir, *profile, *quiet, *noisy); err != nil {
		fmt.Fprintln(os.Stderr, "chain:", err)
		os.Exit(1)
	}
}

func run(rounds int, d, warm time.Duration, conns, workers int, logDir, profile string, quiet, noisyCores float64) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	if logDir == "" {
		if logDir, err = os.MkdirTemp("", "brood-chain-"); err != nil {
			return err
		}
		defer os.RemoveAll(logDir)
	}
	if profile != "" {
		if profile, err = filepath.Abs(profile); err != nil {
			return err
		}
	}

	fmt.Printf("brood default-chain cost: hello, %d workers per cluster, %d connections, %s per mode per round, %d rounds\n",
		workers, conns, d, rounds)
	fmt.Printf("%s, %s/%s, %d CPUs; clusters' stderr in %s\n\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), logDir)

	clusters := make(map[string]*cluster, len(modes))
	defer func() {
		for _, c := range clusters {
			c.stop()
		}
	}()
	for _, m := range modes {
		c, err := startCluster(ctx, exe, m.name, workers, logDir, profile)
		if err != nil {
			return err
		}
		clusters[m.name] = c
	}
	served := make(map[string]int64, len(modes)) // for reading -profile's profiles per request
	for _, m := range modes {
		n, _, _ := load(clusters[m.name].addr, conns, warm)
		served[m.name] += n
	}

	// measure runs the load against one cluster and returns its rate, the
	// CPU time the cluster and the load generator spent per request, and
	// the cores anything else on the machine used meanwhile.
	measure := func(mode string) (rps, cpuPerReq, other float64, err error) {
		c := clusters[mode]
		if quiet > 0 {
			waitQuiet(quiet, 30*time.Second)
		}
		pid, self := c.cmd.Process.Pid, os.Getpid()
		c0, _ := procTicks(self)
		m0, t0 := machineBusy(), time.Now()
		c0 += treeTicks(pid)
		n, rps, failed := load(c.addr, conns, d)
		served[mode] += n
		wall := time.Since(t0).Seconds()
		c1, _ := procTicks(self)
		mine := treeTicks(pid) + c1 - c0
		other = float64(machineBusy()-m0-mine) / ticksPerSecond / wall
		cpuPerReq = float64(mine) / ticksPerSecond / (rps * wall)
		if failed > 0 {
			err = fmt.Errorf("%d requests failed", failed)
		}
		return rps, cpuPerReq, other, err
	}

	rps := make(map[string][]float64, len(modes))
	cpu := make(map[string][]float64, len(modes)) // seconds per request
	var quietRounds []int
	fmt.Printf("%-6s", "round")
	for _, m := range modes {
		fmt.Printf(" %12s", m.name+" rps")
	}
	for _, m := range modes[1:] {
		fmt.Printf(" %12s", m.name+"/bare")
	}
	for _, m := range modes[1:] {
		fmt.Printf(" %12s", "cpu "+m.name[:3]+"/bare")
	}
	fmt.Printf(" %11s\n", "other cores")
	for r := range rounds {
		order := slices.Clone(modes)
		if r%2 == 1 { // alternate the order, so drift during a round favours no mode
			slices.Reverse(order)
		}
		worst := 0.0
		for _, m := range order {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			v, perReq, other, err := measure(m.name)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r+1, m.name, err)
			}
			rps[m.name] = append(rps[m.name], v)
			cpu[m.name] = append(cpu[m.name], perReq)
			worst = max(worst, other)
		}
		fmt.Printf("%-6d", r+1)
		for _, m := range modes {
			fmt.Printf(" %12.0f", rps[m.name][r])
		}
		for _, m := range modes[1:] {
			fmt.Printf(" %12.3f", rps[m.name][r]/rps["bare"][r])
		}
		for _, m := range modes[1:] {
			fmt.Printf(" %12.3f", cpu["bare"][r]/cpu[m.name][r])
		}
		mark := ""
		if worst > noisyCores {
			mark = " noisy"
		} else {
			quietRounds = append(quietRounds, r)
		}
		fmt.Printf(" %11.2f%s\n", worst, mark)
	}

	fmt.Println()
	all := make([]int, rounds)
	for r := range all {
		all[r] = r
	}
	for _, m := range modes[1:] {
		fmt.Printf("%s: %s\n", m.name, m.label)
		for _, set := range []struct {
			name   string
			rounds []int
		}{{"all rounds", all}, {"quiet rounds", quietRounds}} {
			if len(set.rounds) == 0 {
				fmt.Printf("    %-12s none\n", set.name)
				continue
			}
			var ratios, cpuRatios []float64
			for _, r := range set.rounds {
				ratios = append(ratios, rps[m.name][r]/rps["bare"][r])
				cpuRatios = append(cpuRatios, cpu["bare"][r]/cpu[m.name][r])
			}
			slices.Sort(ratios)
			slices.Sort(cpuRatios)
			verdict := ": meets 0.9x"
			if !hasTarget(m.name) {
				verdict = ""
			} else if median(ratios) < 0.9 {
				verdict = ": MISSES 0.9x"
			}
			fmt.Printf("    %-12s throughput %s/bare median %.3f (min %.3f, max %.3f, %d rounds)%s\n",
				set.name, m.name, median(ratios), ratios[0], ratios[len(ratios)-1], len(ratios), verdict)
			fmt.Printf("    %-12s CPU per request bare/%s median %.3f (min %.3f, max %.3f)\n",
				"", m.name, median(cpuRatios), cpuRatios[0], cpuRatios[len(cpuRatios)-1])
		}
	}
	for _, m := range modes {
		fmt.Printf("%-8s median %.0f requests/s, %.1f µs CPU per request (cluster + load generator), all rounds\n",
			m.name, median(sorted(rps[m.name])), 1e6*median(sorted(cpu[m.name])))
	}
	if profile != "" {
		fmt.Printf("profiles in %s; requests served, warm-up included:", profile)
		for _, m := range modes {
			fmt.Printf(" %s %d", m.name, served[m.name])
		}
		fmt.Println()
	}
	return nil
}

func sorted(v []float64) []float64 { v = slices.Clone(v); slices.Sort(v); return v }

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// cluster is a brood master this program started, in its own process group.
type cluster struct {
	cmd  *exec.Cmd
	addr string
	log  *os.File
	done chan struct{}
}

func startCluster(ctx context.Context, exe, mode string, workers int, logDir, profile string) (*cluster, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(logDir, mode+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envApp+"="+mode, "BROOD_ADDR="+addr,
		fmt.Sprintf("BROOD_WORKERS=%d", workers), "BROOD_LOG_FORMAT=json", "BROOD_LOG_LEVEL=info")
	if profile != "" {
		cmd.Env = append(cmd.Env, envProfile+"="+profile)
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s cluster: %w", mode, err)
	}
	c := &cluster{cmd: cmd, addr: addr, log: log, done: make(chan struct{})}
	go func() { cmd.Wait(); close(c.done) }()

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-c.done:
			return nil, fmt.Errorf("%s cluster exited during startup; see %s", mode, log.Name())
		case <-time.After(50 * time.Millisecond):
		}
		if resp, err := client.Get("http://" + addr + "/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return c, nil
			}
		}
	}
	c.stop()
	return nil, fmt.Errorf("%s cluster not answering on %s within 30s; see %s", mode, addr, log.Name())
}

// stop asks the master for a graceful stop (so worker profiles are
// written), then kills the cluster's process group if it is still there.
func (c *cluster) stop() {
	pid := c.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL) // the group is this master's: we made it with Setpgid
		<-c.done
	}
	c.log.Close()
}

// freeAddr finds a free port on 127.0.0.1 for a cluster.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		return "", errors.New("listener not on 127.0.0.1")
	}
	return addr, nil
}
