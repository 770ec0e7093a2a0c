package framework

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/broodhq/brood/internal/workerjobs"
	"github.com/broodhq/brood/messenger"
	"github.com/broodhq/brood/schedule"
)

// Worker-side schedules (app.App.Every and Cron) run on the agent's clock,
// through the messenger:
//
//	worker → agent  Call  brood.schedule.register  []workerjobs.Spec → registerReply
//	agent → worker  Call  brood.schedule.run       runMsg → nil or the job's error
//	agent → workers SendToApp brood.schedule.hello  nil: announce your schedules
//
// Each worker announces its schedules when it starts and again when a new
// agent says hello (the agent that scheduled them may have died). The agent
// schedules each name once, as "app:NAME", in the same scheduler as its own
// jobs; at a tick it calls the job in one ready worker that announced it, at
// random, or in every such worker, and waits for the answers, so that the
// status shows the run's duration and error and a slow run makes the next
// tick skip rather than pile up.
const (
	actScheduleRegister = "brood.schedule.register"
	actScheduleRun      = "brood.schedule.run"
	actScheduleHello    = "brood.schedule.hello"

	appJobPrefix = "app:"
	// appJobCallLimit bounds one run as the agent waits for it. Calls need
	// a deadline; a job may legitimately take long, and a worker that dies
	// ends the call at once anyway.
	appJobCallLimit = 24 * time.Hour
)

type runMsg struct {
	Name string `json:"name"`
	Tick uint64 `json:"tick"`
}

type registerReply struct {
	// Conflicts names the schedules the agent did not take from this
	// worker, and why.
	Conflicts []string `json:"conflicts,omitempty"`
}

// appSchedules is the agent's half.
type appSchedules struct {
	log  *slog.Logger
	msgr *messenger.Messenger
	jobs *schedule.Scheduler

	mu    sync.Mutex
	known map[string]*appSchedule
}

type appSchedule struct {
	spec workerjobs.Spec
	pids map[int]bool // workers that announced it; pruned at each tick
	tick atomic.Uint64
}

func serveAppSchedules(log *slog.Logger, msgr *messenger.Messenger, jobs *schedule.Scheduler) {
	s := &appSchedules{log: log, msgr: msgr, jobs: jobs, known: map[string]*appSchedule{}}
	msgr.Handle(actScheduleRegister, s.register)
	// Queued until the cluster is ready; a new agent's hello reaches the
	// workers that announced to the agent before it.
	if err := msgr.SendToApp(actScheduleHello, nil); err != nil {
		log.Warn("ask workers to announce their schedules", "err", err)
	}
}

func (s *appSchedules) register(_ context.Context, msg messenger.Message) (any, error) {
	var specs []workerjobs.Spec
	if err := msg.Decode(&specs); err != nil {
		return nil, err
	}
	var reply registerReply
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, spec := range specs {
		if cur := s.known[spec.Name]; cur != nil {
			if cur.spec != spec {
				why := fmt.Sprintf("%s: announced as %s, but scheduled as %s from another worker: every worker must register the same schedules",
					spec.Name, describe(spec), describe(cur.spec))
				s.log.Error("worker schedule conflict; keeping the first", "job", spec.Name, "worker_pid", msg.PID, "why", why)
				reply.Conflicts = append(reply.Conflicts, why)
				continue
			}
			cur.pids[msg.PID] = true
			continue
		}
		sched := &appSchedule{spec: spec, pids: map[int]bool{msg.PID: true}}
		run := func(ctx context.Context) error { return s.tick(ctx, sched) }
		var err error
		if spec.Cron != "" {
			err = s.jobs.Cron(spec.Cron, appJobPrefix+spec.Name, run)
		} else {
			err = s.jobs.Every(spec.Every, appJobPrefix+spec.Name, run)
		}
		if err != nil {
			reply.Conflicts = append(reply.Conflicts, fmt.Sprintf("%s: %v", spec.Name, err))
			if !errors.Is(err, schedule.ErrStopped) {
				s.log.Error("cannot schedule a worker job", "job", spec.Name, "err", err)
			}
			continue
		}
		s.known[spec.Name] = sched
		s.log.Debug("worker schedule registered", "job", spec.Name, "schedule", describe(spec), "worker_pid", msg.PID)
	}
	return reply, nil
}

func describe(s workerjobs.Spec) string {
	mode := "one worker"
	if s.All {
		mode = "all workers"
	}
	return s.Schedule() + " in " + mode
}

// targets returns the ready workers that announced the schedule. A worker
// that announced but is not ready may be starting (it announces before it
// serves), so it is kept; pids of workers long gone are dropped once they
// far outnumber the ready ones.
func (s *appSchedules) targets(sched *appSchedule) []int {
	ready := s.msgr.AppPIDs()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for pid := range sched.pids {
		if slices.Contains(ready, pid) {
			out = append(out, pid)
		}
	}
	if len(sched.pids) > 4*len(ready)+64 {
		for pid := range sched.pids {
			if !slices.Contains(ready, pid) {
				delete(sched.pids, pid)
			}
		}
	}
	slices.Sort(out)
	return out
}

var errNoWorker = errors.New("no ready worker has this job; tick skipped")

func (s *appSchedules) tick(ctx context.Context, sched *appSchedule) error {
	pids := s.targets(sched)
	if len(pids) == 0 {
		return errNoWorker
	}
	msg := runMsg{Name: sched.spec.Name, Tick: sched.tick.Add(1)}
	ctx, cancel := context.WithTimeout(ctx, appJobCallLimit)
	defer cancel()
	if !sched.spec.All {
		return s.msgr.Call(ctx, pids[rand.IntN(len(pids))], actScheduleRun, msg, nil)
	}
	errs := make([]error, len(pids))
	var wg sync.WaitGroup
	for i, pid := range pids {
		wg.Go(func() {
			if err := s.msgr.Call(ctx, pid, actScheduleRun, msg, nil); err != nil {
				errs[i] = fmt.Errorf("worker pid %d: %w", pid, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

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
	msgr.Handle(actScheduleRun, w.run)
	msgr.On(actScheduleHello, func(messenger.Message) { w.request() })
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
		var reply registerReply
		ctx, cancel := context.WithTimeout(w.ctx, time.Minute)
		err := w.msgr.CallAgent(ctx, actScheduleRegister, specs, &reply)
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
	var m runMsg
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
