package agentproc

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/broodhq/brood/internal/child"
	"github.com/broodhq/brood/internal/fleetlink"
	"github.com/broodhq/brood/messenger"
)

// openFleet joins the fleet when one is configured (nil, nil otherwise) and
// makes the agent the host's door to it: fleet messages that this host's
// processes send (messenger.BroadcastFleet) come here and go to Redis, and
// those Redis delivers are broadcast on this host. Without a fleet, they
// are broadcast on this host alone.
func openFleet(c Config, log *slog.Logger, msgr *messenger.Messenger) (fleetlink.Fleet, error) {
	var fl fleetlink.Fleet
	if c.FleetURL != "" {
		f, err := joinFleet(c, log, msgr)
		if err != nil {
			return nil, err
		}
		fl = f
	}
	msgr.On(fleetlink.ActBroadcast, func(msg messenger.Message) {
		var e fleetlink.Envelope
		if err := msg.Decode(&e); err != nil {
			log.Warn("fleet message", "err", err)
			return
		}
		if fl == nil {
			deliverFleet(log, msgr, e)
			return
		}
		if err := fl.Broadcast(e); err != nil {
			log.Warn("fleet message dropped", "action", e.Action, "from_pid", msg.PID, "err", err)
		}
	})
	return fl, nil
}

func joinFleet(c Config, log *slog.Logger, msgr *messenger.Messenger) (fleetlink.Fleet, error) {
	env := child.FromEnv(os.Getenv)
	started := time.Now()
	f, err := fleetlink.Open(context.Background(), fleetlink.Config{
		URL: c.FleetURL, App: c.Store.App, Log: log,
		Deliver: func(e fleetlink.Envelope) { deliverFleet(log, msgr, e) },
		Status: func() fleetlink.Status {
			host, _ := os.Hostname()
			return fleetlink.Status{Host: host, Addr: c.Addr, PID: env.MasterPID, Generation: env.Generation,
				Workers: len(msgr.AppPIDs()), Started: started}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	return f, nil
}

func deliverFleet(log *slog.Logger, msgr *messenger.Messenger, e fleetlink.Envelope) {
	var data any
	if len(e.Data) > 0 {
		data = json.RawMessage(e.Data)
	}
	if err := msgr.Broadcast(e.Action, data); err != nil {
		log.Warn("fleet message not delivered on this host", "action", e.Action, "err", err)
	}
}
