package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

var (
	// ErrInvalidSchedule is wrapped by every error about an interval or a
	// cron spec that the scheduler cannot run.
	ErrInvalidSchedule = errors.New("invalid schedule")
	// ErrDuplicateName is returned when a job's name is already taken.
	ErrDuplicateName = errors.New("job name already used")
	// ErrStopped is returned by calls made after Stop, and is the cause of
	// the jobs' contexts ending (see context.Cause).
	ErrStopped = errors.New("scheduler stopped")
)

// Options configure a Scheduler. The zero value is ready to use.
type Options struct {
	// Clock defaults to SystemClock.
	Clock Clock
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Location is where cron specs are evaluated; nil means time.Local.
	Location *time.Location
	// OnFinish, if set, is called after every run with the job's name,
	// how long the run took and what it returned (a panic as an error),
	// on the run's goroutine: for metrics (package metrics's ObserveJob).
	OnFinish func(job string, took time.Duration, err error)
}

// A JobOption changes how one job runs.
type JobOption func(*job)

// AllowOverlap lets a tick start a run while the previous one is still
// going, instead of skipping the tick.
func AllowOverlap() JobOption {
	return func(j *job) { j.overlap = true }
}

// Scheduler runs jobs on intervals and cron specs. Its methods are safe for
// concurrent use.
type Scheduler struct {
	clock    Clock
	log      *slog.Logger
	loc      *time.Location
	onFinish func(string, time.Duration, error)

	// mu guards everything below. The clock's callbacks, the job goroutines
	// and the API all take it for a short, non-blocking section; it is never
	// held while a job runs.
	mu       sync.Mutex
	jobs     map[string]*job
	started  bool
	stopped  bool
	ctx      context.Context // parent of the jobs' contexts, set by Start
	cancel   context.CancelCauseFunc
	inflight map[*job]int  // runs in progress, removed jobs included, so Stop can name them
	idle     chan struct{} // closed once stopped with nothing in flight
}

// New returns a Scheduler; add jobs with Every and Cron, then Start it.
func New(opts Options) *Scheduler {
	s := &Scheduler{
		clock:    opts.Clock,
		log:      opts.Logger,
		loc:      opts.Location,
		onFinish: opts.OnFinish,
		jobs:     make(map[string]*job),
		inflight: make(map[*job]int),
		idle:     make(chan struct{}),
	}
	if s.clock == nil {
		s.clock = SystemClock{}
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.loc == nil {
		s.loc = time.Local
	}
	return s
}

// Every runs job every d, the first time d after Start (or after this call,
// if the scheduler is already running).
func (s *Scheduler) Every(d time.Duration, name string, job func(ctx context.Context) error, opts ...JobOption) error {
	if d <= 0 {
		return fmt.Errorf("schedule %q: %w: every %v: the interval must be > 0, e.g. time.Minute", name, ErrInvalidSchedule, d)
	}
	return s.add(name, interval(d), job, opts)
}

// Cron runs job at the times a standard 5-field cron spec names, evaluated in
// Options.Location unless the spec starts with CRON_TZ=.
func (s *Scheduler) Cron(spec, name string, job func(ctx context.Context) error, opts ...JobOption) error {
	t, err := parseCron(spec, s.loc, s.clock.Now())
	if err != nil {
		return fmt.Errorf("schedule %q: %w", name, err)
	}
	return s.add(name, t, job, opts)
}

func (s *Scheduler) add(name string, t timing, fn func(context.Context) error, opts []JobOption) error {
	if name == "" {
		return errors.New("schedule: a job needs a name")
	}
	if fn == nil {
		return fmt.Errorf("schedule %q: job func is nil", name)
	}
	j := &job{name: name, timing: t, fn: fn, log: s.log.With("job", name)}
	for _, o := range opts {
		o(j)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return fmt.Errorf("schedule %q: %w", name, ErrStopped)
	}
	if _, ok := s.jobs[name]; ok {
		return fmt.Errorf("schedule %q: %w", name, ErrDuplicateName)
	}
	s.jobs[name] = j
	if s.started {
		now := s.clock.Now()
		s.arm(j, t.Next(now), now)
	}
	return nil
}

// Remove unschedules the named job and reports whether it existed. A run in
// progress is not interrupted; Stop still waits for it.
func (s *Scheduler) Remove(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[name]
	if !ok {
		return false
	}
	delete(s.jobs, name)
	j.removed = true
	j.disarm()
	return true
}

// Start schedules every job added so far. The jobs' contexts are derived from
// ctx, so its values reach them; if ctx ends, running jobs see it and no new
// runs start, but Stop must still be called to wait for them.
func (s *Scheduler) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return fmt.Errorf("start scheduler: %w", ErrStopped)
	}
	if s.started {
		return errors.New("start scheduler: already started")
	}
	s.started = true
	s.ctx, s.cancel = context.WithCancelCause(ctx)
	now := s.clock.Now()
	for _, j := range s.jobs {
		s.arm(j, j.timing.Next(now), now)
	}
	return nil
}

// Stop unschedules every job, cancels the jobs' contexts with cause
// ErrStopped, and waits for running jobs until ctx ends. If some are still
// running then, it returns an error that names them and wraps ctx's cause;
// calling Stop again waits again. Stop before Start is fine.
func (s *Scheduler) Stop(ctx context.Context) error {
	s.mu.Lock()
	if !s.stopped {
		s.stopped = true
		for _, j := range s.jobs {
			j.disarm()
		}
		if s.cancel != nil {
			s.cancel(ErrStopped)
		}
		s.closeIdleLocked()
	}
	idle := s.idle
	s.mu.Unlock()

	select {
	case <-idle:
		return nil
	case <-ctx.Done():
	}

	s.mu.Lock()
	var names []string
	for j, n := range s.inflight {
		names = append(names, fmt.Sprintf("%s (%d)", j.name, n))
	}
	s.mu.Unlock()
	if len(names) == 0 { // the last one finished as ctx ended
		return nil
	}
	slices.Sort(names)
	return fmt.Errorf("stop scheduler: jobs still running: %s: %w", strings.Join(names, ", "), context.Cause(ctx))
}

func (s *Scheduler) closeIdleLocked() {
	if !s.stopped || len(s.inflight) > 0 {
		return
	}
	select {
	case <-s.idle:
	default:
		close(s.idle)
	}
}
