// Command shared evaluates a load-aware alternative to the kernel's
// SO_REUSEPORT hash for brood: one accept queue shared by every worker
// (every worker accepts on the same listening socket), against brood's
// per-slot sockets, under a mixed load in which 10% of requests burn 20 ms
// of CPU and the rest answer hello.
//
// It starts -workers worker processes (this binary again, GOMAXPROCS=1 as
// brood gives them on this machine) serving either their own socket of a
// SO_REUSEPORT group ("hash") or the one shared socket ("shared"), runs
// -clients client loops against them for -d, and reports the fast
// requests' p50, p99 and max latency, their throughput, and the workers'
// CPU per request (the cost of Go waking every worker for each connection
// on a shared socket: the netpoller registers listeners without
// EPOLLEXCLUSIVE). Modes alternate over -rounds, with fresh connections and
// then keep-alive ones.
//
//	cd bench && go run ./cmd/shared -d 3s -rounds 2
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/broodhq/brood/bench/internal/mixedload"
	"github.com/broodhq/brood/reuseport"
)

const (
	roleEnv = "BALANCE_BENCH_WORKER"
	gateEnv = "BALANCE_BENCH_GATE" // gated: the most connections a worker holds
)

func main() {
	if os.Getenv(roleEnv) != "" {
		worker()
		return
	}
	workers := flag.Int("workers", 4, "worker processes")
	clients := flag.Int("clients", 16, "client loops")
	d := flag.Duration("d", 3*time.Second, "duration of each run")
	rounds := flag.Int("rounds", 2, "rounds of each mode")
	slowShare := flag.Float64("slow", 0.1, "share of requests that burn 20 ms of CPU")
	flag.Parse()
	if *workers < 1 || *workers > 64 || *clients < 1 || *clients > 512 || *rounds < 1 || *rounds > 10 || *d <= 0 || *d > time.Minute {
		fmt.Fprintln(os.Stderr, "shared: want 1-64 workers, 1-512 clients, 1-10 rounds, a duration up to 1m")
		os.Exit(2)
	}
	fmt.Printf("%d workers (GOMAXPROCS=1), %d clients, %.0f%% of requests burn 20ms CPU, %s per run, %d CPUs\n",
		*workers, *clients, 100**slowShare, *d, runtime.NumCPU())
	fmt.Printf("%-10s %-7s %9s %9s %9s %10s %12s %s\n", "conns", "mode", "p50 ms", "p99 ms", "max ms", "fast/s", "CPU µs/req", "per worker")
	for _, keepAlive := range []bool{false, true} {
		for range *rounds {
			for _, mode := range []string{"hash", "shared", "gated"} {
				r, err := run(mode, *workers, *clients, *d, *slowShare, keepAlive)
				if err != nil {
					fmt.Fprintln(os.Stderr, "shared:", err)
					os.Exit(1)
				}
				conns := "fresh"
				if keepAlive {
					conns = "keep-alive"
				}
				fmt.Printf("%-10s %-7s %9.2f %9.2f %9.2f %10.0f %12.0f %v\n", conns, mode,
					ms(r.P50), ms(r.P99), ms(r.Max), r.FastPerSec, r.cpuPerReq, r.perWorker)
			}
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

type result struct {
	mixedload.Result
	cpuPerReq float64 // µs of worker CPU per request
	perWorker []int   // requests served
}

func run(mode string, workers, clients int, d time.Duration, slowShare float64, keepAlive bool) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d+time.Minute)
	defer cancel()
	var r result
	var files []*os.File
	var addr string
	switch mode {
	case "hash":
		g, err := reuseport.Bind(ctx, "127.0.0.1:0", workers)
		if err != nil {
			return r, err
		}
		defer g.Close()
		for _, slot := range g.Order() {
			files = append(files, g.File(slot))
		}
		addr = g.Addr().String()
	case "shared", "gated":
		// One socket, handed to every worker.
		g, err := reuseport.Bind(ctx, "127.0.0.1:0", 1)
		if err != nil {
			return r, err
		}
		defer g.Close()
		for range workers {
			files = append(files, g.File(1))
		}
		addr = g.Addr().String()
	}
	exe, err := os.Executable()
	if err != nil {
		return r, err
	}
	var cmds []*exec.Cmd
	var outs []io.ReadCloser
	defer func() {
		for _, c := range cmds {
			if c.ProcessState == nil {
				c.Process.Kill()
				c.Wait()
			}
		}
	}()
	for i, f := range files {
		c := exec.Command(exe)
		c.Env = append(os.Environ(), roleEnv+"=1", "GOMAXPROCS=1")
		if mode == "gated" {
			// A fair share of the connections, plus one so that a
			// worker can take a connection while another closes.
			c.Env = append(c.Env, fmt.Sprintf("%s=%d", gateEnv, (clients+workers-1)/workers+1))
		}
		c.ExtraFiles = []*os.File{f}
		c.Stderr = os.Stderr
		out, err := c.StdoutPipe()
		if err != nil {
			return r, err
		}
		if err := c.Start(); err != nil {
			return r, fmt.Errorf("start worker %d: %w", i+1, err)
		}
		cmds = append(cmds, c)
		outs = append(outs, out)
	}
	if err := waitServing(ctx, addr); err != nil {
		return r, err
	}

	mr, err := mixedload.Run(addr, clients, d, slowShare, keepAlive)
	if err != nil {
		return r, fmt.Errorf("%s: %w", mode, err)
	}
	var cpu time.Duration
	total := 0
	for i, c := range cmds {
		c.Process.Signal(syscall.SIGTERM)
		var served int
		fmt.Fscan(outs[i], &served)
		if err := c.Wait(); err != nil {
			return r, fmt.Errorf("worker %d: %w", i+1, err)
		}
		ru := c.ProcessState.SysUsage().(*syscall.Rusage)
		cpu += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		r.perWorker = append(r.perWorker, served)
		total += served
	}
	r.Result = mr
	r.cpuPerReq = float64(cpu.Microseconds()) / float64(max(total, 1))
	return r, nil
}

func waitServing(ctx context.Context, addr string) error {
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("workers not serving on %s: %w", addr, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// worker serves fd 3 until SIGTERM, then prints how many requests it
// served.
func worker() {
	ln, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
	var mu sync.Mutex
	served := 0
	count := func() { mu.Lock(); served++; mu.Unlock() }
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		count()
		io.WriteString(w, "Hello, World!")
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		count()
		mixedload.Burn(20 * time.Millisecond)
		io.WriteString(w, "done")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second}
	if limit, _ := strconv.Atoi(os.Getenv(gateEnv)); limit > 0 {
		g := newGate(ln, limit)
		ln = g
		srv.ConnState = g.connState
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	<-stop
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	srv.Shutdown(ctx)
	cancel()
	<-done
	mu.Lock()
	fmt.Println(served)
	mu.Unlock()
}

// gate is the accept side of the gated mode: the worker takes a connection
// from the shared queue only while it holds fewer than limit connections, so
// that a burst of keep-alive connections spreads instead of landing on the
// first worker to wake. A worker busy with CPU-heavy requests gates itself:
// with GOMAXPROCS=1 its accepting goroutine does not run while a handler
// burns, and an idle worker takes the connection. (Gating on in-flight
// requests as well was measured and was worse: fresh connections' p50 rose
// from 3 ms to 15 ms, each worker serving one request at a time.)
type gate struct {
	net.Listener
	limit int

	mu     sync.Mutex
	cond   *sync.Cond
	open   int
	isShut bool // Close was called: Accept stops waiting
}

func newGate(ln net.Listener, limit int) *gate {
	g := &gate{Listener: ln, limit: limit}
	g.cond = sync.NewCond(&g.mu)
	return g
}

func (g *gate) Accept() (net.Conn, error) {
	g.mu.Lock()
	for g.open >= g.limit && !g.isShut {
		g.cond.Wait()
	}
	g.open++ // counted now, so that the wait above sees it at once
	g.mu.Unlock()
	c, err := g.Listener.Accept()
	if err != nil {
		g.closed()
	}
	return c, err
}

func (g *gate) Close() error {
	g.mu.Lock()
	g.isShut = true
	g.mu.Unlock()
	g.cond.Broadcast()
	return g.Listener.Close()
}

func (g *gate) closed() {
	g.mu.Lock()
	g.open--
	g.mu.Unlock()
	g.cond.Signal()
}

func (g *gate) connState(_ net.Conn, s http.ConnState) {
	if s == http.StateClosed || s == http.StateHijacked {
		g.closed()
	}
}
