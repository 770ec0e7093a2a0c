// Command metricsbench measures brood's cluster metrics (issue 12):
//
//   - scrape: the latency of a scrape of the cluster view with -workers
//     workers holding -series series each (p50, p90, max over -scrapes
//     scrapes), and the workers' hello throughput while a scraper asks
//     every second against none, in alternating rounds;
//   - handler: the throughput of a handler that counts and times every
//     request with client_golang, brood (-hworkers workers, router bare)
//     against one net/http process with plain client_golang and promhttp,
//     in alternating rounds, with the server CPU per request.
//
// Both run in one invocation, each server started from a built binary and
// stopped by its pid; everything talks to 127.0.0.1 only.
//
//	cd bench && go run ./cmd/metricsbench
//	cd bench && go run ./cmd/metricsbench -rounds 5 -d 5s -json
//
// With -compare BIN (a metricsapp built from another commit), it measures
// only the scrape latencies, normal and churning, of BIN and of this
// tree's metricsapp in alternating rounds of -scrapes scrapes, so that
// both see the same machine:
//
//	git archive main | tar -x -C /tmp/base && (cd /tmp/base/bench && go build -o /tmp/metricsapp.base ./cmd/metricsapp)
//	cd bench && go run ./cmd/metricsbench -compare /tmp/metricsapp.base -rounds 4
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/broodhq/brood/bench/internal/loadgen"
	"github.com/broodhq/brood/bench/internal/stats"
	"github.com/broodhq/brood/bench/internal/target"
)

type report struct {
	Workers     int           `json:"workers"`
	Series      int           `json:"series_per_worker"`
	ScrapeMs    stats.Summary `json:"scrape_ms"`
	ScrapeBytes int           `json:"scrape_bytes"`
	ScrapeP50   float64       `json:"scrape_p50_ms"`
	// One net/http process holding all the workers' series, scraped with
	// promhttp: the same data without a cluster, in the same run.
	PlainScrapeMs stats.Summary `json:"plain_scrape_ms"`
	// The same two with every series changing every 100 ms, so that the
	// agent can skip nothing.
	ChurnScrapeMs      stats.Summary `json:"churn_scrape_ms"`
	ChurnPlainScrapeMs stats.Summary `json:"churn_plain_scrape_ms"`
	ScrapedRPS         []float64     `json:"rps_while_scraped"`
	UnscrapedRPS       []float64     `json:"rps_not_scraped"`
	ScrapedRatio       float64       `json:"rps_scraped_over_not"` // median of the rounds' ratios
	HandlerWorkers     int           `json:"handler_workers"`
	BroodRPS           []float64     `json:"brood_rps"`
	PlainRPS           []float64     `json:"plain_rps"`
	BroodCPU           []float64     `json:"brood_cpu_us_per_request"`
	PlainCPU           []float64     `json:"plain_cpu_us_per_request"`
	RPSRatio           float64       `json:"brood_over_plain_rps"`         // median of the rounds' ratios
	CPURatio           float64       `json:"plain_over_brood_cpu_per_req"` // per core: above 1, brood costs less
}

func main() {
	workers := flag.Int("workers", 4, "workers for the scrape benchmark")
	series := flag.Int("series", 10_000, "extra series in every worker")
	scrapes := flag.Int("scrapes", 30, "scrapes to time")
	hworkers := flag.Int("hworkers", 2, "workers for the handler benchmark")
	rounds := flag.Int("rounds", 3, "alternating rounds per comparison")
	dur := flag.Duration("d", 4*time.Second, "duration of each load round")
	conns := flag.Int("c", 50, "connections of the load generator")
	asJSON := flag.Bool("json", false, "print the report as JSON")
	compare := flag.String("compare", "", "a metricsapp binary to compare scrape latencies with, in alternating rounds (nothing else is measured)")
	flag.Parse()
	if *compare != "" {
		if err := compareScrapes(*compare, *workers, *series, *scrapes, *rounds); err != nil {
			fmt.Fprintln(os.Stderr, "metricsbench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*workers, *series, *scrapes, *hworkers, *rounds, *dur, *conns, *asJSON); err != nil {
		fmt.Fprintln(os.Stderr, "metricsbench:", err)
		os.Exit(1)
	}
}

func run(workers, series, scrapes, hworkers, rounds int, dur time.Duration, conns int, asJSON bool) error {
	ctx, done := target.Session("metricsbench")
	defer done()
	bins, err := target.Build(ctx, "results/bin", "metricsapp", "metricsplain")
	if err != nil {
		return err
	}
	rep := report{Workers: workers, Series: series, HandlerWorkers: hworkers}
	if err := scrapeBench(ctx, bins["metricsapp"], &rep, scrapes, rounds, dur, conns); err != nil {
		return err
	}
	if err := plainScrape(ctx, bins["metricsplain"], &rep, scrapes, false, &rep.PlainScrapeMs); err != nil {
		return err
	}
	if err := churnScrape(ctx, bins["metricsapp"], &rep, scrapes); err != nil {
		return err
	}
	if err := plainScrape(ctx, bins["metricsplain"], &rep, scrapes, true, &rep.ChurnPlainScrapeMs); err != nil {
		return err
	}
	if err := handlerBench(ctx, bins, &rep, rounds, dur, conns); err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Printf("scrape, %d workers x %d series: p50 %.1f ms, p90 %.1f ms, max %.1f ms over %d scrapes, %d bytes (text)\n",
		rep.Workers, rep.Series, rep.ScrapeMs.Median, rep.ScrapeMs.P90, rep.ScrapeMs.Max, scrapes, rep.ScrapeBytes)
	fmt.Printf("scrape, one plain process x %d series: p50 %.1f ms, p90 %.1f ms, max %.1f ms\n",
		rep.Workers*rep.Series, rep.PlainScrapeMs.Median, rep.PlainScrapeMs.P90, rep.PlainScrapeMs.Max)
	fmt.Printf("the same, every series changing every 100 ms: brood p50 %.1f ms (p90 %.1f), plain p50 %.1f ms (p90 %.1f)\n",
		rep.ChurnScrapeMs.Median, rep.ChurnScrapeMs.P90, rep.ChurnPlainScrapeMs.Median, rep.ChurnPlainScrapeMs.P90)
	fmt.Printf("hello throughput while scraped every second / not scraped: %.3f (rounds %v vs %v req/s)\n",
		rep.ScrapedRatio, round0(rep.ScrapedRPS), round0(rep.UnscrapedRPS))
	fmt.Printf("instrumented handler, brood %d workers / plain net/http: %.3f req/s (rounds %v vs %v), CPU per request plain/brood %.3f (µs %v vs %v)\n",
		rep.HandlerWorkers, rep.RPSRatio, round0(rep.BroodRPS), round0(rep.PlainRPS), rep.CPURatio, round0(rep.PlainCPU), round0(rep.BroodCPU))
	return nil
}

// scrapeOnce GETs url and returns how long that took and the body's size.
func scrapeOnce(cl *http.Client, url string) (time.Duration, int, error) {
	t0 := time.Now()
	res, err := cl.Get(url)
	if err != nil {
		return 0, 0, err
	}
	n, err := io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if err == nil && res.StatusCode != 200 {
		err = fmt.Errorf("scrape: status %d", res.StatusCode)
	}
	return time.Since(t0), int(n), err
}

// waitAnswers waits (30 s at most) for url to answer.
func waitAnswers(url string) error {
	cl := &http.Client{Timeout: 30 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, _, err := scrapeOnce(cl, url); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("%s: %w", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// timeScrapes GETs url n times, 100 ms apart, after waiting (30 s at
// most) for it to answer.
func timeScrapes(url string, n int) (ms []float64, size int, err error) {
	if err := waitAnswers(url); err != nil {
		return nil, 0, err
	}
	cl := &http.Client{Timeout: 30 * time.Second}
	for range n {
		d, sz, err := scrapeOnce(cl, url)
		if err != nil {
			return nil, 0, err
		}
		ms = append(ms, loadgen.Ms(d))
		size = sz
		time.Sleep(100 * time.Millisecond)
	}
	return ms, size, nil
}

func plainScrape(ctx context.Context, bin string, rep *report, scrapes int, churn bool, into *stats.Summary) error {
	p, err := target.StartServing(ctx, target.Spec{Name: "plain", Path: bin, DiscardOutput: true,
		Env: []string{fmt.Sprintf("METRICS_SERIES=%d", rep.Workers*rep.Series), churnEnv(churn)}}, "/")
	if err != nil {
		return err
	}
	defer p.Stop(10 * time.Second)
	ms, _, err := timeScrapes("http://"+p.Addr+"/metrics", scrapes)
	if err != nil {
		return err
	}
	*into = stats.Summarize(ms)
	return nil
}

func churnEnv(churn bool) string {
	if churn {
		return "METRICS_CHURN=1"
	}
	return "METRICS_CHURN=0"
}

// churnScrape times scrapes of the cluster whose series all change.
func churnScrape(ctx context.Context, bin string, rep *report, scrapes int) error {
	ms, err := clusterScrapes(ctx, bin, rep.Workers, rep.Series, scrapes, true)
	if err != nil {
		return err
	}
	rep.ChurnScrapeMs = stats.Summarize(ms)
	return nil
}

// clusterScrapes starts bin as a cluster and times scrapes of its agent's
// /metrics.
func clusterScrapes(ctx context.Context, bin string, workers, series, scrapes int, churn bool) ([]float64, error) {
	ms, _, err := clusterScrapesCPU(ctx, bin, workers, series, scrapes, churn)
	return ms, err
}

// clusterScrapesCPU is clusterScrapes, also returning the CPU time the
// cluster's processes spent while the scrapes were timed, per scrape (in
// ms; what churns or reports in the background included).
func clusterScrapesCPU(ctx context.Context, bin string, workers, series, scrapes int, churn bool) ([]float64, float64, error) {
	maddr, err := target.FreeAddr()
	if err != nil {
		return nil, 0, err
	}
	p, err := target.StartServing(ctx, target.Spec{Name: "brood", Path: bin, DiscardOutput: true, Env: []string{
		fmt.Sprintf("BROOD_WORKERS=%d", workers), fmt.Sprintf("METRICS_SERIES=%d", series),
		"BROOD_METRICS_ADDR=" + maddr, "BROOD_LOG_LEVEL=warn", churnEnv(churn),
	}}, "/")
	if err != nil {
		return nil, 0, err
	}
	defer p.Stop(10 * time.Second)
	url := "http://" + maddr + "/metrics"
	if err := waitAnswers(url); err != nil {
		return nil, 0, err
	}
	pids := target.Tree(p.PID())
	before := target.CPUTicks(pids)
	ms, _, err := timeScrapes(url, scrapes)
	ticks := target.CPUTicks(pids) - before
	return ms, float64(ticks) / target.TicksPerSecond * 1000 / float64(max(scrapes, 1)), err
}

// compareScrapes times the scrapes of base's cluster and this tree's in
// alternating rounds, normal and churning, and prints both.
func compareScrapes(base string, workers, series, scrapes, rounds int) error {
	ctx, done := target.Session("metricsbench")
	defer done()
	bins, err := target.Build(ctx, "results/bin", "metricsapp")
	if err != nil {
		return err
	}
	sides := []struct{ name, bin string }{{"base", base}, {"this tree", bins["metricsapp"]}}
	for _, churn := range []bool{false, true} {
		ms := make([][]float64, len(sides))
		cpu := make([][]float64, len(sides))
		for r := range rounds {
			for _, i := range []int{r % 2, 1 - r%2} { // who goes first alternates
				got, c, err := clusterScrapesCPU(ctx, sides[i].bin, workers, series, scrapes, churn)
				if err != nil {
					return fmt.Errorf("%s: %w", sides[i].name, err)
				}
				ms[i] = append(ms[i], got...)
				cpu[i] = append(cpu[i], c)
			}
		}
		what := "normal"
		if churn {
			what = "churn (every series changing every 100 ms)"
		}
		for i, side := range sides {
			s := stats.Summarize(ms[i])
			fmt.Printf("scrape %s, %d workers x %d series, %s: p50 %.1f ms, p90 %.1f ms, max %.1f ms over %d scrapes; cluster CPU per scrape %.1f ms (median of rounds %v)\n",
				what, workers, series, side.name, s.Median, s.P90, s.Max, s.N, stats.Summarize(cpu[i]).Median, round0(cpu[i]))
		}
	}
	return nil
}

func scrapeBench(ctx context.Context, bin string, rep *report, scrapes, rounds int, dur time.Duration, conns int) error {
	maddr, err := target.FreeAddr()
	if err != nil {
		return err
	}
	spec := target.Spec{Name: "brood", Path: bin, DiscardOutput: true, Env: []string{
		fmt.Sprintf("BROOD_WORKERS=%d", rep.Workers), fmt.Sprintf("METRICS_SERIES=%d", rep.Series),
		"BROOD_METRICS_ADDR=" + maddr, "BROOD_LOG_LEVEL=warn",
	}}
	p, err := target.StartServing(ctx, spec, "/")
	if err != nil {
		return err
	}
	defer p.Stop(10 * time.Second)
	url := "http://" + maddr + "/metrics"
	cl := &http.Client{Timeout: 30 * time.Second}
	ms, size, err := timeScrapes(url, scrapes)
	if err != nil {
		return err
	}
	rep.ScrapeBytes = size
	rep.ScrapeMs = stats.Summarize(ms)
	rep.ScrapeP50 = rep.ScrapeMs.Median

	var ratios []float64
	for r := range rounds {
		var pair [2]float64
		for _, scraped := range order(r) {
			sctx, stop := context.WithCancel(ctx)
			finished := make(chan struct{})
			if scraped {
				go func() {
					defer close(finished)
					t := time.NewTicker(time.Second)
					defer t.Stop()
					for {
						select {
						case <-sctx.Done():
							return
						case <-t.C:
							scrapeOnce(cl, url)
						}
					}
				}()
			} else {
				close(finished)
			}
			res, err := loadgen.Run(ctx, loadgen.Config{URL: "http://" + p.Addr + "/", Conns: conns, Duration: dur})
			stop()
			<-finished
			if err != nil {
				return err
			}
			if scraped {
				pair[0] = res.RPS
				rep.ScrapedRPS = append(rep.ScrapedRPS, res.RPS)
			} else {
				pair[1] = res.RPS
				rep.UnscrapedRPS = append(rep.UnscrapedRPS, res.RPS)
			}
		}
		ratios = append(ratios, pair[0]/pair[1])
	}
	rep.ScrapedRatio = stats.Summarize(ratios).Median
	return nil
}

// order alternates which side runs first in a round.
func order(round int) []bool {
	if round%2 == 0 {
		return []bool{true, false}
	}
	return []bool{false, true}
}

func handlerBench(ctx context.Context, bins map[string]string, rep *report, rounds int, dur time.Duration, conns int) error {
	brood, err := target.StartServing(ctx, target.Spec{Name: "brood", Path: bins["metricsapp"], DiscardOutput: true,
		Env: []string{fmt.Sprintf("BROOD_WORKERS=%d", rep.HandlerWorkers), "BROOD_LOG_LEVEL=warn"}}, "/")
	if err != nil {
		return err
	}
	defer brood.Stop(10 * time.Second)
	plain, err := target.StartServing(ctx, target.Spec{Name: "plain", Path: bins["metricsplain"], DiscardOutput: true}, "/")
	if err != nil {
		return err
	}
	defer plain.Stop(10 * time.Second)

	measure := func(p *target.Process) (rps, cpuPerReq float64, err error) {
		pids := target.Tree(p.PID())
		before := target.CPUTicks(pids)
		res, err := loadgen.Run(ctx, loadgen.Config{URL: "http://" + p.Addr + "/", Conns: conns, Duration: dur})
		if err != nil {
			return 0, 0, err
		}
		ticks := target.CPUTicks(pids) - before
		us := float64(ticks) / target.TicksPerSecond * 1e6 / float64(max(res.OK, 1))
		return res.RPS, us, nil
	}
	var rpsRatios, cpuRatios []float64
	for r := range rounds {
		var b, pl, bc, pc float64
		for _, isBrood := range order(r) {
			p := plain
			if isBrood {
				p = brood
			}
			rps, cpu, err := measure(p)
			if err != nil {
				return err
			}
			if isBrood {
				b, bc = rps, cpu
				rep.BroodRPS, rep.BroodCPU = append(rep.BroodRPS, rps), append(rep.BroodCPU, cpu)
			} else {
				pl, pc = rps, cpu
				rep.PlainRPS, rep.PlainCPU = append(rep.PlainRPS, rps), append(rep.PlainCPU, cpu)
			}
		}
		rpsRatios = append(rpsRatios, b/pl)
		cpuRatios = append(cpuRatios, pc/bc)
	}
	rep.RPSRatio = stats.Summarize(rpsRatios).Median
	rep.CPURatio = stats.Summarize(cpuRatios).Median
	return nil
}

func round0(v []float64) []float64 {
	out := slices.Clone(v)
	for i, x := range out {
		out[i] = float64(int(x + 0.5))
	}
	return out
}
