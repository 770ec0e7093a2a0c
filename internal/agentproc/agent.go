package agentproc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/broodhq/brood/agent"
	"github.com/broodhq/brood/internal/child"
	"github.com/broodhq/brood/internal/lifecycle"
	"github.com/broodhq/brood/internal/protocol"
	"github.com/broodhq/brood/internal/storeagent"
	"github.com/broodhq/brood/internal/wire"
	"github.com/broodhq/brood/metrics"
	"github.com/broodhq/brood/schedule"
)

// Config is the agent's runtime configuration, built once by framework.Run
// from the resolved options.
type Config struct {
	Log             *slog.Logger
	FleetURL        string                     // the fleet's Redis (framework.WithFleet); "": no fleet
	Addr            string                     // the application's address, for the fleet status
	Hooks           []func(*agent.Agent) error // WithAgent
	ShutdownTimeout time.Duration              // when stopped by a signal
	Rotation        *RotationConfig            // nil without a log directory
	Store           storeagent.Config          // the cluster's store, which the agent hosts
	MetricsAddr     string                     // where the agent serves the cluster's /metrics; "": nowhere
	Heartbeat       time.Duration              // how often to report the messenger's work to the master; 0: never
	// Settings of what the agent hosts for the cluster (a store, metrics)
	// go here, filled in by framework.Run (framework/roles.go).
}

// errAgentStopping ends the context of the agent's background work.
var errAgentStopping = errors.New("agent stopping")

// Run plays the agent: it runs the hooks, tells the master it is ready,
// starts its jobs and the log rotation once the cluster is ready, and stops
// in order when told to.
//
// What the agent hosts for the cluster is started in order below: first
// what agent.New needs (its Config: the messenger, the scheduler, a
// store), then brood's own handlers, then the WithAgent hooks, which may
// use all of it; what must outlive the OnStop hooks is closed after them.
func Run(c Config, link *child.Link, term chan os.Signal) error {
	log := c.Log
	hooks := lifecycle.New(log)
	jobs := schedule.New(schedule.Options{Logger: log, OnFinish: metrics.ObserveJob})
	msgr := link.Messenger()
	sc := c.Store
	sc.Logger = log
	st, err := storeagent.Open(context.Background(), sc)
	if err != nil {
		return link.BootFailed(fmt.Errorf("agent: %w", err))
	}
	defer st.Close() // after the OnStop hooks, which may use it
	storeagent.Serve(msgr, st)
	fl, err := openFleet(c, log, msgr)
	if err != nil {
		return link.BootFailed(fmt.Errorf("agent: %w", err))
	}
	if fl != nil { // on a failed boot; Close again is a no-op
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			fl.Close(ctx)
		}()
	}
	a := agent.New(agent.Config{Logger: log, Hooks: hooks, Messenger: msgr, Scheduler: jobs, Store: storeagent.Shared(st), Fleet: fl})
	serveAppSchedules(log, msgr, jobs) // before the hooks: "brood." actions are ours
	aggregator := metrics.StartAggregator(msgr, metrics.AggregatorConfig{Logger: log, Addr: c.MetricsAddr})
	defer aggregator.Stop()
	if err := metrics.RegisterJobs(jobs.Status); err != nil {
		log.Warn("brood's job metrics left out", "err", err)
	}
	serveMasterStats(link, log)
	for _, hook := range c.Hooks {
		if err := child.CallHook(func() error { return hook(a) }); err != nil {
			return link.BootFailed(fmt.Errorf("agent: WithAgent hook: %w", err))
		}
	}
	link.Handle(protocol.Jobs, func(f wire.Frame) {
		var msg protocol.JobsMsg
		if err := protocol.Decode(f, &msg); err != nil {
			log.Warn("jobs query from the master", "err", err)
			return
		}
		link.Send(protocol.Control(protocol.Jobs, protocol.JobsMsg{ID: msg.ID, Jobs: jobs.Status()}))
	})
	var handover sync.WaitGroup
	defer handover.Wait()
	link.Handle(protocol.ClusterStopping, func(wire.Frame) {
		if fl == nil {
			return
		}
		handover.Go(func() {
			ctx, cancel := child.StopContext(c.ShutdownTimeout)
			defer cancel()
			if err := fl.Handover(ctx); err != nil {
				log.Warn("fleet: lease not handed over; the next host takes it when it lapses", "err", err)
			}
		})
	})
	var rotation *logRotation
	if c.Rotation != nil {
		rotation = newLogRotation(*c.Rotation, log, link.ReopenEverywhere)
	}

	// Jobs and rotation start when the cluster is ready, not when the agent
	// is: a job's first run may count on the workers being there.
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(errAgentStopping)
	var (
		mu      sync.Mutex
		stopped bool
		bg      sync.WaitGroup
	)
	onReady := sync.OnceFunc(func() {
		mu.Lock()
		if !stopped {
			if err := jobs.Start(ctx); err != nil {
				log.Error("start jobs", "err", err)
			}
			if rotation != nil {
				bg.Add(1)
				go func() { defer bg.Done(); rotation.run(ctx) }()
			}
		}
		mu.Unlock()
		hooks.Ready()
	})
	link.Ready()
	if c.Heartbeat > 0 {
		bg.Add(1)
		go func() { defer bg.Done(); link.Heartbeat(ctx, c.Heartbeat) }()
	}

	stop, err := link.WaitStop(c.ShutdownTimeout, term, onReady, nil)
	mu.Lock()
	stopped = true
	mu.Unlock()
	cancel(errAgentStopping)
	if err != nil {
		return err
	}
	stopCtx, stopCancel := child.StopContext(stop.Timeout)
	defer stopCancel()
	// Jobs, then calls and messages, stop before the OnStop hooks, which
	// may close what they use. Calls are answered while jobs finish; then
	// the master stops sending (and holds what comes for the next agent),
	// and the agent answers what it got.
	if err := jobs.Stop(stopCtx); err != nil {
		log.Warn("jobs still running at the shutdown timeout; leaving them", "err", err)
	}
	if fl != nil { // after the jobs: the next holder must not overlap them
		if err := fl.Close(stopCtx); err != nil {
			log.Warn("fleet: lease not handed over; the next host takes it when it lapses", "err", err)
		}
	}
	bg.Wait()
	link.LeaveMessaging(stopCtx)
	link.DrainMessenger(stopCtx)
	if err := hooks.Stop(stopCtx); err != nil {
		log.Error("OnStop hook failed", "err", err)
	}
	link.CloseMessenger(stopCtx)
	link.Close()
	return nil
}
