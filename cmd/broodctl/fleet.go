package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/broodhq/brood/fleet"
)

// fleetCommand runs `broodctl status --fleet` and reports ok; any other
// command line it leaves to run (ok false).
func fleetCommand(ctx context.Context, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	fs := flag.NewFlagSet("broodctl status --fleet", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	wide := fs.Bool("fleet", false, "")
	app := fs.String("app", "", "")
	redisURL := fs.String("redis", os.Getenv("BROOD_FLEET_REDIS"), "")
	asJSON := fs.Bool("json", false, "")
	timeout := fs.Duration("timeout", 10*time.Second, "")
	fs.String("socket", "", "")
	fs.Int("port", 0, "")
	var words []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			return 0, false // run says what is wrong
		}
		if fs.NArg() == 0 {
			break
		}
		words = append(words, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if !*wide || !slices.Equal(words, []string{"status"}) {
		return 0, false
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := fleetStatus(ctx, stdout, *redisURL, *app, *asJSON); err != nil {
		fmt.Fprintf(stderr, "broodctl: %v\n", err)
		return 1, true
	}
	return 0, true
}

// fleetStatus prints every host of the app's fleet, as their agents
// published it in Redis.
func fleetStatus(ctx context.Context, w io.Writer, redisURL, app string, asJSON bool) error {
	if redisURL == "" {
		return fmt.Errorf("status --fleet needs the fleet's Redis: -redis URL or $BROOD_FLEET_REDIS")
	}
	if app == "" {
		return fmt.Errorf("status --fleet needs the application's name (its WithName): -app NAME")
	}
	hosts, err := fleet.Hosts(ctx, redisURL, app)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(hosts)
	}
	fmt.Fprintf(w, "fleet %s: %d hosts\n", app, len(hosts))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tADDR\tPID\tGEN\tWORKERS\tUPTIME\tLEASE")
	for _, h := range hosts {
		lease := "-"
		if h.Leader {
			lease = fmt.Sprintf("holder (epoch %d)", h.Epoch)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\n", h.Host, h.Addr, h.PID, h.Generation, h.Workers, h.Uptime, lease)
	}
	return tw.Flush()
}
