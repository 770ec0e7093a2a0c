package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/broodhq/brood/fleet"
)

// fleetStatus is `broodctl status --fleet`: every host of the app's fleet,
// as their agents published it in Redis.
func fleetStatus(ctx context.Context, w io.Writer, redisURL, app string, asJSON bool) error {
	if redisURL == "" {
		return fmt.Errorf("status --fleet needs the fleet's Redis: -redis URL or $%s", "BROOD_FLEET_REDIS")
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
