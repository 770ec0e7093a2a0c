package framework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/broodhq/brood/agent"
	"github.com/broodhq/brood/internal/lifecycle"
	"github.com/broodhq/brood/internal/wire"
	"github.com/broodhq/brood/metrics"
	"github.com/broodhq/brood/schedule"
)

// errAgentStopping ends the context of the agent's background work.
var errAgentStopping = errors.New("agent stopping")

func runAgent(c *config, log *slog.Logger, ch *channel, term chan os.Signal) error {
	hooks := lifecycle.New(log)
	jobs := schedule.New(schedule.Options{Logger: log, OnFinish: metrics.ObserveJob})
	a := agent.New(agent.Config{Logger: log, Hooks: hooks, Messenger: ch.msgr, Scheduler: jobs})
	serveAppSchedules(log, ch.msgr, jobs) // before the hooks: "brood." actions are ours
	aggregator := metrics.StartAggregator(ch.msgr, metrics.AggregatorConfig{Logger: log, Addr: c.metrics.addr})
	defer aggregator.Stop()
	if err := metrics.RegisterJobs(jobs.Status); err != nil {
		log.Warn("brood's job metrics left out", "err", err)
	}
	for _, hook := range c.agentHooks {
		if err := callHook(func() error { return hook(a) }); err != nil {
			return ch.bootFailed(fmt.Errorf("agent: WithAgent hook: %w", err))
		}
	}
	ch.ctl.set(ctlJobs, func(f wire.Frame) {
		var msg jobsMsg
		_ = json.Unmarshal(f.Data, &msg)
		ch.send(control(ctlJobs, jobsMsg{ID: msg.ID, Jobs: jobs.Status()}))
	})
	var rotation *logRotation
	if c.logs.dir != "" {
		rotation = newLogRotation(c, log, ch.reopenEverywhere)
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
				bg.Go(func() { rotation.run(ctx) })
			}
		}
		mu.Unlock()
		hooks.Ready()
	})
	ch.send(control(ctlReady, nil))

	timeout, err := ch.waitStop(c, term, onReady, nil)
	mu.Lock()
	stopped = true
	mu.Unlock()
	cancel(errAgentStopping)
	if err != nil {
		return err
	}
	stopCtx, stopCancel := stopContext(timeout)
	defer stopCancel()
	// Jobs, then calls and messages, stop before the OnStop hooks, which
	// may close what they use. Calls are answered while jobs finish; then
	// the master stops sending (and holds what comes for the next agent),
	// and the agent answers what it got.
	if err := jobs.Stop(stopCtx); err != nil {
		log.Warn("jobs still running at the shutdown timeout; leaving them", "err", err)
	}
	bg.Wait()
	ch.leaveMessaging(stopCtx)
	ch.drainMessenger(stopCtx)
	if err := hooks.Stop(stopCtx); err != nil {
		log.Error("OnStop hook failed", "err", err)
	}
	ch.closeMessenger(stopCtx)
	ch.conn.Close(time.Second)
	return nil
}

// callHook runs a WithAgent or WithApp hook, turning a panic (agent.Every
// and app.App.Every panic on a wrong setup) into an error, so the master
// reports the cause instead of an exit status.
func callHook(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return fn()
}
