// Command load sends HTTP GET load to a server on this machine and reports
// requests per second, errors by kind and latency percentiles.
//
//	go run ./cmd/load -c 50 -d 10s http://127.0.0.1:8080/
//	go run ./cmd/load -c 50 -n 100000 -fresh -json http://127.0.0.1:8080/
//
// Only loopback targets are accepted (127.0.0.0/8, ::1, localhost). A run
// always ends by -d; -n can end it sooner. Ctrl-C ends it early and still
// prints what was measured.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/broodhq/brood/bench/internal/loadgen"
)

func main() {
	var cfg loadgen.Config
	flag.IntVar(&cfg.Conns, "c", 50, fmt.Sprintf("concurrent connections, 1 to %d", loadgen.MaxConns))
	flag.DurationVar(&cfg.Duration, "d", 10*time.Second, fmt.Sprintf("how long to run, at most %s", loadgen.MaxDuration))
	flag.Int64Var(&cfg.Requests, "n", 0, "stop after this many requests (0: only -d ends the run)")
	flag.BoolVar(&cfg.Fresh, "fresh", false, "open a new connection for every request instead of keeping connections alive")
	flag.DurationVar(&cfg.Timeout, "timeout", 5*time.Second, "bound on each request, connecting included")
	asJSON := flag.Bool("json", false, "print the result as JSON")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: load [flags] [URL]   (default URL http://127.0.0.1:8080/)\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	cfg.URL = "http://127.0.0.1:8080/"
	switch flag.NArg() {
	case 0:
	case 1:
		cfg.URL = flag.Arg(0)
	default:
		flag.Usage()
		os.Exit(2)
	}
	if err := loadgen.CheckURL(cfg.URL); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(2)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
	} else {
		fmt.Print(res)
	}
	if res.OK == 0 {
		os.Exit(1)
	}
}
