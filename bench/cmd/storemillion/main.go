// Command storemillion measures the agent's store holding many live
// sessions (1 million of 200 bytes by default, as scsstore keeps them):
// the database file's size, the agent's memory, and how long a new agent
// takes to be ready with them after a rolling reload and after a SIGKILL.
//
// It fills a data directory with the sessions through store/boltstore
// directly (the agent's backend, so that filling does not measure the
// messenger), then runs cmd/storeapp on it with 2 workers:
//
//   - open: boltstore.Open of the full file in this process, and one Get
//
//   - start: exec of the cluster to its first served request
//
//   - reload: HUP to the master; the new agent's "agent ready" time, which
//     counts from its exec (the old one has stopped and closed the file)
//
//   - kill: SIGKILL of the agent, then the time until a worker's Get of a
//     session succeeds again (the master restarts the agent after 100ms
//     of backoff; calls wait for it)
//
//     cd bench && go run ./cmd/storemillion -n 1000000
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/broodhq/brood/bench/internal/target"
	"github.com/broodhq/brood/store/boltstore"
)

var (
	n    = flag.Int("n", 1_000_000, "sessions")
	size = flag.Int("size", 200, "bytes per session")
	keep = flag.Bool("keep", false, "keep the data directory (printed) for another run")
)

func main() {
	flag.Parse()
	ctx, done := target.Session("storemillion")
	defer done()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "storemillion:", err)
		done()
		os.Exit(1)
	}
}

func key(i int) string { return fmt.Sprintf("scs:session:%043d", i) } // scs tokens are 43 characters

func run(ctx context.Context) error {
	paths, err := target.Build(ctx, "results/bin", "storeapp")
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "storemillion-")
	if err != nil {
		return err
	}
	if *keep {
		fmt.Println("data directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	path := filepath.Join(dir, "store.db")

	t0 := time.Now()
	if err := fill(path); err != nil {
		return err
	}
	st, _ := os.Stat(path)
	fmt.Printf("fill:   %d sessions of %d bytes in %s (%.0f/s); file %.1f MiB\n",
		*n, *size, time.Since(t0).Round(time.Millisecond), float64(*n)/time.Since(t0).Seconds(), mib(st.Size()))

	t0 = time.Now()
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		return err
	}
	if _, ok, err := s.Get(ctx, key(*n/2)); err != nil || !ok {
		return fmt.Errorf("get after open: %v, %v", ok, err)
	}
	fmt.Printf("open:   boltstore.Open + one Get in %s\n", time.Since(t0).Round(time.Microsecond))
	s.Close()

	addr, err := target.FreeAddr()
	if err != nil {
		return err
	}
	p, err := target.Start(target.Spec{Name: "brood", Path: paths["storeapp"], Env: []string{
		"STOREAPP=brood", "BROOD_WORKERS=2", "BROOD_LOG_LEVEL=info", "BROOD_LOG_FORMAT=json", "BROOD_DATA_DIR=" + dir}}, addr)
	if err != nil {
		return err
	}
	defer p.Stop(20 * time.Second)
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	ready, err := p.WaitServing(wctx, "/", 5*time.Millisecond)
	cancel()
	if err != nil {
		return err
	}
	fmt.Printf("start:  exec → first served request %s; agent ready after %s\n", ready.Round(time.Millisecond), agentReady(p, 1))
	cl := &http.Client{Timeout: 30 * time.Second}
	if err := get(cl, addr, key(7)); err != nil {
		return err
	}
	report(p, "after start")
	// Touch every session once, as a day of traffic would.
	t0 = time.Now()
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < *n; i += 16 * (*n / 20000) { // 20,000 reads spread over the file
				get(cl, addr, key(i))
			}
		})
	}
	wg.Wait()
	fmt.Printf("read:   20,000 sessions spread over the file through the workers in %s\n", time.Since(t0).Round(time.Millisecond))
	report(p, "after reads")

	syscall.Kill(p.PID(), syscall.SIGHUP)
	reloaded := agentReady(p, 2)
	fmt.Printf("reload: the new agent was ready %s after its exec\n", reloaded)
	if err := get(cl, addr, key(11)); err != nil {
		return err
	}

	agent := agentPID(p.PID())
	t0 = time.Now()
	syscall.Kill(agent, syscall.SIGKILL)
	for {
		if err := get(cl, addr, key(13)); err == nil && agentPID(p.PID()) != agent {
			break
		}
		if time.Since(t0) > time.Minute {
			return fmt.Errorf("no Get within a minute of the agent's SIGKILL")
		}
	}
	fmt.Printf("kill:   SIGKILL of the agent → a worker's Get answered in %s (restart backoff 100ms included); new agent ready %s after its exec\n",
		time.Since(t0).Round(time.Millisecond), agentReady(p, 3))
	report(p, "after the kill")
	return nil
}

func fill(path string) error {
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	val := []byte(strings.Repeat("s", *size))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 64 {
		wg.Go(func() {
			for i := w; i < *n; i += 64 {
				if err := s.Set(context.Background(), key(i), val, 24*time.Hour); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func get(cl *http.Client, addr, k string) error {
	resp, err := cl.Get("http://" + addr + "/get?k=" + k)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("get %s: %d", k, resp.StatusCode)
	}
	return nil
}

// agentReady waits for the master's nth "agent ready" record and returns
// its ms.
func agentReady(p *target.Process, nth int) string {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		seen := 0
		for _, line := range strings.Split(p.Output(), "\n") {
			var rec struct {
				Msg string  `json:"msg"`
				Ms  float64 `json:"ms"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && (rec.Msg == "agent ready" || (nth > 1 && rec.Msg == "replacement ready" && strings.Contains(line, `"child":"agent"`))) {
				if seen++; seen == nth {
					return fmt.Sprintf("%.0f ms", rec.Ms)
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return "(no agent ready line)"
}

func agentPID(master int) int {
	for _, pid := range target.Children(master) {
		if m, err := target.Memory(pid); err == nil && strings.HasSuffix(m.Name, ": agent") {
			return pid
		}
	}
	return 0
}

func report(p *target.Process, when string) {
	var parts []string
	for _, pid := range target.Tree(p.PID()) {
		if m, err := target.Memory(pid); err == nil {
			role := "master"
			if i := strings.LastIndex(m.Name, ": "); i >= 0 {
				role = m.Name[i+2:]
			}
			// The database is mmapped: its pages count in RssFile (page
			// cache the kernel may drop), not in the heap (RssAnon).
			anon, file := statusKiB(pid, "RssAnon:"), statusKiB(pid, "RssFile:")
			parts = append(parts, fmt.Sprintf("%s %.1f MiB (anon %.1f, file %.1f)", role, float64(m.RSS)/1024, float64(anon)/1024, float64(file)/1024))
		}
	}
	fmt.Printf("rss:    %s: %s\n", when, strings.Join(parts, ", "))
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func statusKiB(pid int, name string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, name); ok {
			var v int64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return 0
}
