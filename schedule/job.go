package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"
)

// A jobs fields from timer on are guarded by Scheduler.mu; the ones above
// never change once the job is added.
type job struct {
	name    string
	timing  timing
	fn      func(context.Context) error
	overlap bool
	log     *slog.Logger

	timer   Timer
	next    time.Time
	removed bool

	running      int
	lastStart    time.Time
	lastDuration time.Duration
	lastErr      string
	runs         int64
	skipped      int64
	failures     int64
}

// errGoexit is what a run reports if its job called runtime.Goexit (as
// t.FailNow does) instead of returning.
var errGoexit = errors.New("job called runtime.Goexit")

// arm sets the job's timer for next. A zero next means robfig/cron found no
// time within five years; Cron refuses such specs, so this is a safety net.
func (s *Scheduler) arm(j *job, next, now time.Time) {
	j.next = next
	if next.IsZero() {
		j.timer = nil
		j.log.Warn("schedule has no further runs", "schedule", j.timing.String())
		return
	}
	j.timer = s.clock.AfterFunc(next.Sub(now), func() { s.fire(j) })
}

func (j *job) disarm() {
	if j.timer != nil {
		j.timer.Stop()
		j.timer = nil
	}
	j.next = time.Time{}
}

// fire handles one tick: it starts a run unless the previous one is still
// going, then sets the timer for the next tick.
func (s *Scheduler) fire(j *job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A real timer can fire while Stop or Remove is waiting for the lock.
	if s.stopped || j.removed {
		return
	}
	if err := s.ctx.Err(); err != nil {
		j.disarm()
		j.log.Debug("not running: scheduler context ended", "err", context.Cause(s.ctx))
		return
	}
	now := s.clock.Now()
	due := j.next
	if j.running > 0 && !j.overlap {
		j.skipped++
		j.log.Warn("tick skipped: previous run still going", "tick", due, "running_since", j.lastStart)
	} else {
		s.launch(j, now, due)
	}

	next := j.timing.Next(due)
	if !next.After(now) {
		// Late by more than a period: the process was paused or the machine
		// slept. Running the missed ticks now would bunch them up, so they
		// are dropped.
		j.log.Warn("missed ticks while paused; not catching up", "due", due, "late", now.Sub(due))
		next = j.timing.Resume(due, now)
	}
	s.arm(j, next, now)
}

func (s *Scheduler) launch(j *job, now, due time.Time) {
	j.running++
	j.runs++
	j.lastStart = now
	s.inflight[j]++
	j.log.Debug("job starting")
	go s.run(context.WithValue(s.ctx, dueKey{}, due), j, now)
}

type dueKey struct{}

// DueFromContext returns the time the run's tick was due (not when it
// started, which is a little later), from a job's context. Hosts that run
// the same schedule agree on it, which is what lets a fleet claim each
// tick once (package fleet).
func DueFromContext(ctx context.Context) (time.Time, bool) {
	t, ok := ctx.Value(dueKey{}).(time.Time)
	return t, ok
}

func (s *Scheduler) run(ctx context.Context, j *job, start time.Time) {
	err := errGoexit
	defer func() { s.finish(j, start, err) }()
	err = call(ctx, j)
}

// panicError carries a job's panic to finish, which logs it once, with the
// stack taken where the panic happened.
type panicError struct {
	value any
	stack []byte
}

func (p *panicError) Error() string { return fmt.Sprintf("panic: %v", p.value) }

// call runs the job, turning a panic into an error so that the job keeps its
// schedule and the agent process survives.
func call(ctx context.Context, j *job) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{value: r, stack: debug.Stack()}
		}
	}()
	return j.fn(ctx)
}

func (s *Scheduler) finish(j *job, start time.Time, err error) {
	d := s.clock.Now().Sub(start)
	// Logged before taking the lock, so that a slow log writer cannot hold
	// up ticks, and before the run counts as finished, so that once Status
	// or Stop says it is, its log line has been written.
	if pe, ok := err.(*panicError); ok {
		j.log.Error("job panicked", "panic", pe.value, "duration", d, "stack", string(pe.stack))
	} else if err != nil {
		j.log.Error("job failed", "err", err, "duration", d)
	} else {
		j.log.Debug("job done", "duration", d)
	}
	if s.onFinish != nil {
		s.onFinish(j.name, d, err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	j.running--
	j.lastDuration = d
	j.lastErr = ""
	if err != nil {
		j.failures++
		j.lastErr = err.Error()
	}
	if s.inflight[j]--; s.inflight[j] == 0 {
		delete(s.inflight, j)
	}
	s.closeIdleLocked()
}
