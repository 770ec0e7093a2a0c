package workerjobs

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/broodhq/brood/schedule"
)

// Spec is one worker-side schedule as workers announce it to the agent.
type Spec struct {
	Name  string        `json:"name"`
	Every time.Duration `json:"every,omitempty"` // an interval, or
	Cron  string        `json:"cron,omitempty"`  // a cron spec
	All   bool          `json:"all,omitempty"`   // every worker runs each tick, not one
}

// Schedule is how the status of the agent's scheduler shows the spec.
func (s Spec) Schedule() string {
	if s.Cron != "" {
		return s.Cron
	}
	return "every " + s.Every.String()
}

var (
	// ErrUnknownJob is returned by Run for a name this worker did not
	// register (a worker of another version, during a rolling reload).
	ErrUnknownJob = errors.New("no such job in this worker")
	// ErrBusy is returned by Run when the job's previous run in this
	// worker is still going: the tick is skipped here.
	ErrBusy = errors.New("previous run still going in this worker; tick skipped")
	// ErrStopping is returned by Run once Stop was called.
	ErrStopping = errors.New("worker stopping")
)

type job struct {
	spec    Spec
	fn      func(context.Context) error
	running bool
}

// Registry is one worker's schedules. Its methods are safe for concurrent
// use.
type Registry struct {
	ctx    context.Context // the jobs' context; ends at Stop
	cancel context.CancelFunc

	mu       sync.Mutex
	jobs     map[string]*job
	stopped  bool
	runs     sync.WaitGroup
	onChange func() // called after Add, once set
}

// New returns an empty Registry.
func New() *Registry {
	ctx, cancel := context.WithCancel(context.Background())
	return &Registry{ctx: ctx, cancel: cancel, jobs: map[string]*job{}}
}

// Add registers a job. It refuses an empty name, a nil job, a name already
// taken, an interval <= 0 and a cron spec that does not parse, with errors
// wrapping schedule's ErrInvalidSchedule and ErrDuplicateName.
func (r *Registry) Add(s Spec, fn func(context.Context) error) error {
	if err := validate(s, fn); err != nil {
		return err
	}
	r.mu.Lock()
	if _, dup := r.jobs[s.Name]; dup {
		r.mu.Unlock()
		return fmt.Errorf("schedule %q: %w", s.Name, schedule.ErrDuplicateName)
	}
	r.jobs[s.Name] = &job{spec: s, fn: fn}
	notify := r.onChange
	r.mu.Unlock()
	if notify != nil {
		notify()
	}
	return nil
}

// validate checks a spec the way the agent's scheduler will, so that a
// mistake shows up in the worker that made it, at registration.
func validate(s Spec, fn func(context.Context) error) error {
	check := schedule.New(schedule.Options{})
	noop := func(context.Context) error { return nil }
	if fn == nil {
		return fmt.Errorf("schedule %q: job func is nil", s.Name)
	}
	if s.Cron != "" {
		return check.Cron(s.Cron, s.Name, noop)
	}
	return check.Every(s.Every, s.Name, noop)
}

// OnChange sets fn to be called after each Add from now on, so that a job
// registered after the announcement is announced too.
func (r *Registry) OnChange(fn func()) {
	r.mu.Lock()
	r.onChange = fn
	r.mu.Unlock()
}

// Specs returns the registered schedules, sorted by name.
func (r *Registry) Specs() []Spec {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Spec, 0, len(r.jobs))
	for _, j := range r.jobs {
		out = append(out, j.spec)
	}
	slices.SortFunc(out, func(a, b Spec) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// PanicError is what Run returns for a job that panicked; Stack is where.
type PanicError struct {
	Value any
	Stack []byte
}

func (p *PanicError) Error() string { return fmt.Sprintf("panic: %v", p.Value) }

// Run runs the named job now, in the caller's goroutine, with a context
// that ends at Stop, and returns its error; a panic is returned as a
// *PanicError. A job does not overlap itself within a worker: while a run
// is going, Run returns ErrBusy.
func (r *Registry) Run(name string) error {
	r.mu.Lock()
	j := r.jobs[name]
	switch {
	case r.stopped:
		r.mu.Unlock()
		return ErrStopping
	case j == nil:
		r.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrUnknownJob, name)
	case j.running:
		r.mu.Unlock()
		return ErrBusy
	}
	j.running = true
	r.runs.Add(1)
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		j.running = false
		r.mu.Unlock()
		r.runs.Done()
	}()
	return call(r.ctx, j.fn)
}

func call(ctx context.Context, fn func(context.Context) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Value: p, Stack: debug.Stack()}
		}
	}()
	return fn(ctx)
}

// Stop refuses new runs, ends the running jobs' context and waits for them
// until ctx ends; then it returns ctx's cause.
func (r *Registry) Stop(ctx context.Context) error {
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
	r.cancel()
	done := make(chan struct{})
	go func() { r.runs.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("scheduled jobs still running: %w", context.Cause(ctx))
	}
}
