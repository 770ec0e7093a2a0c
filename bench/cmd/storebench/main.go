// Command storebench compares the cluster's store in brood's agent with
// the same application on Redis, in the same run (cmd/storeapp is each):
//
//	incr     a store Incr per request (brood) or a Redis INCR (go-redis)
//	session  scs LoadAndSave per request: on scsstore (brood) or on scs's
//	         redisstore over redigo
//
// on three targets:
//
//	brood    brood, 2 workers, the store in the agent
//	redis    one plain net/http + chi process on Redis, as without brood
//	b+redis  the brood application of "brood" with its state in Redis
//
// against a redis-server this program starts on a free loopback port with
// persistence off (and stops by pid), while brood's agent writes its bbolt
// file and its log (not fsynced, its default). Each connection has a
// session of its own, made before the load. Each round starts with the
// next target, so drift on the machine hits all alike; each round's ratios
// brood/redis and brood/b+redis are reported, and their medians. CPU per
// request counts every process of the target: brood's master, agent and
// workers; the Redis peers' processes and the redis-server.
//
// -gen wrk drives the load with wrk (its sessions' cookies from a Lua
// script) instead of our generator in this process; either way the
// generator's own CPU per request is printed beside the target's, as it
// shares the cores.
//
// -alt PATH adds a fourth target, another build of cmd/storeapp, and the
// ratio alt/brood: two builds of brood compared in the same rounds.
//
//	cd bench && go run ./cmd/storebench -rounds 5 -d 5s -conns 50
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/broodhq/brood/bench/internal/loadgen"
	"github.com/broodhq/brood/bench/internal/redisserver"
	"github.com/broodhq/brood/bench/internal/stats"
	"github.com/broodhq/brood/bench/internal/target"
	"github.com/broodhq/brood/bench/internal/wrk"
)

var (
	rounds  = flag.Int("rounds", 5, "rounds; each measures every scenario on both targets")
	dur     = flag.Duration("d", 5*time.Second, "duration of each measurement")
	conns   = flag.Int("conns", 50, "connections")
	workers = flag.Int("workers", 2, "brood workers")
	only    = flag.String("only", "incr,session", "scenarios to run")
	gen     = flag.String("gen", "load", "load generator: load (ours, in this process) or wrk (apt-get install -y wrk)")
	alt     = flag.String("alt", "", "a second storeapp binary (another build of brood) measured as target \"alt\" in the same rounds, to compare two builds")
)

type server struct {
	name  string
	proc  *target.Process
	extra []int // other pids whose CPU counts (redis-server)
	// cookies, one per connection, for the session scenario
	cookies []string
	// script is wrk's Lua script sending those cookies (-gen wrk)
	script string
}

func main() {
	flag.Parse()
	ctx, done := target.Session("storebench")
	defer done()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "storebench:", err)
		done()
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	if *gen != "load" && *gen != "wrk" {
		return fmt.Errorf("-gen %q: want load or wrk", *gen)
	}
	paths, err := target.Build(ctx, "results/bin", "storeapp")
	if err != nil {
		return err
	}
	rs, err := redisserver.Start("storebench")
	if err != nil {
		return err
	}
	defer rs.Stop()
	dataDir, err := os.MkdirTemp("", "storebench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dataDir)

	broodEnv := func(dir string) []string {
		return []string{"STOREAPP=brood", fmt.Sprint("BROOD_WORKERS=", *workers), "BROOD_LOG_LEVEL=warn", "BROOD_DATA_DIR=" + dir}
	}
	specs := []target.Spec{
		{Name: "brood", Path: paths["storeapp"], DiscardOutput: true, Env: broodEnv(dataDir)},
		{Name: "redis", Path: paths["storeapp"], DiscardOutput: true, Env: []string{"STOREAPP=redis", "STOREAPP_REDIS=" + rs.Addr}},
		{Name: "b+redis", Path: paths["storeapp"], DiscardOutput: true, Env: []string{
			"STOREAPP=broodredis", "STOREAPP_REDIS=" + rs.Addr, fmt.Sprint("BROOD_WORKERS=", *workers), "BROOD_LOG_LEVEL=warn"}},
	}
	// Each comparison is a ratio a/b, a round at a time.
	pairs := [][2]string{{"brood", "redis"}, {"brood", "b+redis"}}
	if *alt != "" {
		altDir, err := os.MkdirTemp("", "storebench-alt-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(altDir)
		specs = append(specs, target.Spec{Name: "alt", Path: *alt, DiscardOutput: true, Env: broodEnv(altDir)})
		pairs = append(pairs, [2]string{"alt", "brood"})
	}
	var servers []*server
	for _, spec := range specs {
		p, err := target.StartServing(ctx, spec, "/")
		if err != nil {
			return err
		}
		defer p.Stop(10 * time.Second)
		s := &server{name: spec.Name, proc: p}
		if strings.Contains(spec.Name, "redis") {
			s.extra = []int{rs.PID()}
		}
		if s.cookies, err = makeSessions(p.Addr, *conns); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		if *gen == "wrk" {
			if s.script, err = cookieScript(dataDir, s.name, s.cookies); err != nil {
				return err
			}
		}
		servers = append(servers, s)
	}

	fmt.Printf("storebench: %d rounds × %s, %d connections, brood %d workers; redis-server %s (no persistence)\n",
		*rounds, *dur, *conns, *workers, rs.Version)
	fmt.Println("targets: brood (store in the agent), redis (one net/http process on Redis), b+redis (brood on Redis)")
	scenarios := strings.Split(*only, ",")
	ratios := map[string][]float64{}
	cpuRatios := map[string][]float64{}
	for round := range *rounds {
		for _, sc := range scenarios {
			// Each round starts with the next target, so each runs in
			// every position in turn.
			order := make([]*server, 0, len(servers))
			for i := range servers {
				order = append(order, servers[(round+i)%len(servers)])
			}
			res := map[string]measure{}
			for _, s := range order {
				m, err := s.measure(ctx, sc)
				if err != nil {
					return err
				}
				res[s.name] = m
				fmt.Printf("round %d %-8s %-7s %8.0f req/s  p50 %5.2f ms  p99 %6.2f ms  %5.1f µs CPU/req (%s %4.1f)  errors %d\n",
					round+1, sc, s.name, m.res.RPS, m.res.P50, m.res.P99, m.cpuPerReq, *gen, m.genPerReq, m.res.Errors.Total())
			}
			for _, p := range pairs {
				a, b := res[p[0]], res[p[1]]
				r, c := a.res.RPS/b.res.RPS, a.cpuPerReq/b.cpuPerReq
				key := sc + " " + p[0] + "/" + p[1]
				ratios[key] = append(ratios[key], r)
				cpuRatios[key] = append(cpuRatios[key], c)
				fmt.Printf("round %d %-8s %-13s %.2f× req/s, %.2f× CPU per request\n", round+1, sc, p[0]+"/"+p[1], r, c)
			}
		}
	}
	fmt.Println()
	for _, sc := range scenarios {
		for _, p := range pairs {
			key := sc + " " + p[0] + "/" + p[1]
			s := stats.Summarize(ratios[key])
			fmt.Printf("%-8s %-13s req/s: median %.2f× (min %.2f, max %.2f, %d rounds); CPU per request: median %.2f×\n",
				sc, p[0]+"/"+p[1], s.Median, s.Min, s.Max, s.N, stats.Median(cpuRatios[key]))
		}
	}
	return nil
}

type measure struct {
	res       loadgen.Result
	cpuPerReq float64 // µs, the target's processes
	genPerReq float64 // µs, the load generator's
}

func (s *server) measure(ctx context.Context, scenario string) (measure, error) {
	cfg := loadgen.Config{URL: "http://" + s.proc.Addr + "/" + scenario, Conns: *conns, Duration: *dur}
	if scenario == "session" {
		cfg.Header = func(i int) string { return "Cookie: " + s.cookies[i] + "\r\n" }
	}
	pids := append(target.Tree(s.proc.PID()), s.extra...)
	before := target.CPUTicks(pids)
	var res loadgen.Result
	var genCPU time.Duration
	var err error
	if *gen == "wrk" {
		script := ""
		if scenario == "session" {
			script = s.script
		}
		res, genCPU, err = wrk.RunScript(ctx, cfg.URL, runtime.NumCPU(), cfg.Conns, cfg.Duration, script)
	} else {
		self := selfCPU()
		res, err = loadgen.Run(ctx, cfg)
		genCPU = selfCPU() - self
	}
	if err != nil {
		return measure{}, err
	}
	ticks := target.CPUTicks(pids) - before
	var m measure
	if ok := res.RPS * res.Elapsed; ok > 0 {
		m.cpuPerReq = float64(ticks) / target.TicksPerSecond / ok * 1e6
		m.genPerReq = genCPU.Seconds() / ok * 1e6
	}
	m.res = res
	return m, nil
}

// selfCPU is the CPU time this process has used: the in-process load
// generator's, as nothing else runs while it does.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cookieScript writes a wrk script that sends the sessions' cookies in
// turn, the first half of them from wrk's first thread and so on, so that
// two requests of one session rarely overlap, as with a cookie per
// connection in our generator.
func cookieScript(dir, name string, cookies []string) (string, error) {
	var b strings.Builder
	b.WriteString("local cookies = {\n")
	for _, c := range cookies {
		fmt.Fprintf(&b, "  %q,\n", c)
	}
	fmt.Fprintf(&b, `}
local threads, n = %d, 0
local per = math.max(1, math.floor(#cookies / threads))
function setup(thread)
  thread:set("first", n)
  n = n + 1
end
local i = -1
function request()
  i = (i + 1) %% per
  return wrk.format(nil, nil, {["Cookie"] = cookies[(first * per + i) %% #cookies + 1]})
end
`, runtime.NumCPU())
	path := filepath.Join(dir, name+"-cookies.lua")
	return path, os.WriteFile(path, []byte(b.String()), 0o644)
}

// makeSessions starts n sessions and returns their cookies.
func makeSessions(addr string, n int) ([]string, error) {
	cl := &http.Client{Timeout: 10 * time.Second}
	var out []string
	for range n {
		resp, err := cl.Get("http://" + addr + "/session")
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		cs := resp.Cookies()
		if resp.StatusCode != 200 || len(cs) == 0 {
			return nil, fmt.Errorf("GET /session: %d, no cookie", resp.StatusCode)
		}
		out = append(out, cs[0].Name+"="+cs[0].Value)
	}
	return out, nil
}
