package agentproc

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

	"github.com/broodhq/brood/internal/protocol"
	"github.com/broodhq/brood/internal/workerjobs"
	"github.com/broodhq/brood/messenger"
	"github.com/broodhq/brood/schedule"
)

// The agent's half of worker-side schedules (protocol.ActSchedule*): it
// schedules each name once, as "app:NAME", in the same scheduler as its own
// jobs; at a tick it calls the job in one ready worker that announced it, at
// random, or in every such worker, and waits for the answers, so that the
// status shows the run's duration and error and a slow run makes the next
// tick skip rather than pile up.
const (
	appJobPrefix = "app:"
	// appJobCallLimit bounds one run as the agent waits for it. Calls need
	// a deadline; a job may legitimately take long, and a worker that dies
	// ends the call at once anyway.
	appJobCallLimit = 24 * time.Hour
)

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
	msgr.Handle(protocol.ActScheduleRegister, s.register)
	// Queued until the cluster is ready; a new agent's hello reaches the
	// workers that announced to the agent before it.
	if err := msgr.SendToApp(protocol.ActScheduleHello, nil); err != nil {
		log.Warn("ask workers to announce their schedules", "err", err)
	}
}

func (s *appSchedules) register(_ context.Context, msg messenger.Message) (any, error) {
	var specs []workerjobs.Spec
	if err := msg.Decode(&specs); err != nil {
		return nil, err
	}
	var reply protocol.RegisterReply
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
	msg := protocol.RunMsg{Name: sched.spec.Name, Tick: sched.tick.Add(1)}
	ctx, cancel := context.WithTimeout(ctx, appJobCallLimit)
	defer cancel()
	if !sched.spec.All {
		return s.msgr.Call(ctx, pids[rand.IntN(len(pids))], protocol.ActScheduleRun, msg, nil)
	}
	errs := make([]error, len(pids))
	var wg sync.WaitGroup
	for i, pid := range pids {
		wg.Go(func() {
			if err := s.msgr.Call(ctx, pid, protocol.ActScheduleRun, msg, nil); err != nil {
				errs[i] = fmt.Errorf("worker pid %d: %w", pid, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
