package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/broodhq/brood/internal/protocol"
	"github.com/broodhq/brood/internal/workerjobs"
	"github.com/broodhq/brood/messenger"
)

// workerSchedules is a worker's half: it announces the registry to the
// agent and runs the jobs the agent calls for.
type workerSchedules struct {
	log  *slog.Logger
	msgr *messenger.Messenger
	reg  *workerjobs.Registry

	ctx      context.Context // ends at stop: cancels announcements
	cancel   context.CancelFunc
	announce chan struct{} // a pending request to announce
	done     chan struct{}
}

// startWorkerSchedules runs after the WithApp hooks; it does nothing for a
// worker without schedules until one is added.
func startWorkerSchedules(log *slog.Logger, msgr *messenger.Messenger, reg *workerjobs.Registry) *workerSchedules {
	w := &workerSchedules{log: log, msgr: msgr, reg: reg, announce: make(chan struct{}, 1), done: make(chan struct{})}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	msgr.Handle(protocol.ActScheduleRun, w.run)
	msgr.On(protocol.ActScheduleHello, func(messenger.Message) { w.request() })
	reg.OnChange(w.request)
	go w.announcer()
	w.request()
	return w
}

func (w *workerSchedules) request() {
	select {
	case w.announce <- struct{}{}:
	default: // one is pending already, and will send the latest specs
	}
}

// announcer sends the schedules to the agent, one announcement at a time:
// a Call made at boot may wait for an agent that is restarting.
func (w *workerSchedules) announcer() {
	defer close(w.done)
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-w.announce:
		}
		specs := w.reg.Specs()
		if len(specs) == 0 {
			continue
		}
		var reply protocol.RegisterReply
		ctx, cancel := context.WithTimeout(w.ctx, time.Minute)
		err := w.msgr.CallAgent(ctx, protocol.ActScheduleRegister, specs, &reply)
		cancel()
		switch {
		case err != nil && w.ctx.Err() == nil:
			// The next agent's hello brings another chance.
			w.log.Warn("could not announce this worker's schedules to the agent", "err", err)
		case len(reply.Conflicts) > 0:
			w.log.Error("the agent did not take some of this worker's schedules", "conflicts", reply.Conflicts)
		}
	}
}

func (w *workerSchedules) run(_ context.Context, msg messenger.Message) (any, error) {
	var m protocol.RunMsg
	if err := msg.Decode(&m); err != nil {
		return nil, err
	}
	start := time.Now()
	err := w.reg.Run(m.Name)
	log := w.log.With("job", m.Name, "tick", m.Tick, "duration", time.Since(start))
	var pe *workerjobs.PanicError
	switch {
	case errors.As(err, &pe):
		// The stack exists only here; the agent logs the failure too.
		log.Error("scheduled job panicked", "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
	case errors.Is(err, workerjobs.ErrBusy):
		log.Warn("scheduled job still running here; tick skipped")
	case err != nil:
		log.Debug("scheduled job failed", "err", err)
	default:
		log.Debug("scheduled job done")
	}
	return nil, err
}

// stop ends the announcements and waits for running jobs until ctx ends.
func (w *workerSchedules) stop(ctx context.Context) {
	w.cancel()
	<-w.done
	if err := w.reg.Stop(ctx); err != nil {
		w.log.Warn("scheduled jobs still running at the shutdown timeout; leaving them", "err", err)
	}
}
