package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/broodhq/brood/internal/fleetlink"
	"github.com/broodhq/brood/internal/lifecycle"
	"github.com/broodhq/brood/internal/storeagent"
	"github.com/broodhq/brood/messenger"
	"github.com/broodhq/brood/schedule"
	"github.com/broodhq/brood/store"
)

// Agent is the agent process's view of the cluster.
type Agent struct {
	log   *slog.Logger
	hooks *lifecycle.Hooks
	msgr  *messenger.Messenger
	jobs  *schedule.Scheduler
	store store.Store
	fleet fleetlink.Fleet
}

// Config describes the agent to New.
type Config struct {
	Logger *slog.Logger // nil: slog.Default()
	Hooks  *lifecycle.Hooks
	// Messenger is the agent's messenger; nil: one outside any cluster,
	// whose sends fail with messenger.ErrNoCluster.
	Messenger *messenger.Messenger
	// Scheduler runs the jobs added with Every and Cron; nil: a new one on
	// the system clock. Whoever creates the Agent starts and stops it
	// (framework.Run does, see Every); tests pass one on a fake clock.
	Scheduler *schedule.Scheduler
	// Store is the cluster's store, which framework.Run opens before the
	// WithAgent hooks and closes after the OnStop hooks; nil: one whose
	// operations fail with store.ErrUnavailable. Tests may pass
	// memstore.New().
	Store store.Store
	// Fleet is this host's membership in a fleet (framework.WithFleet),
	// under which OncePerFleet jobs run; nil: no fleet, and they run once
	// per host.
	Fleet fleetlink.Fleet
}

// New returns an Agent. framework.Run creates the real one.
func New(c Config) *Agent {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Hooks == nil {
		c.Hooks = lifecycle.New(c.Logger)
	}
	if c.Scheduler == nil {
		c.Scheduler = schedule.New(schedule.Options{Logger: c.Logger})
	}
	if c.Messenger == nil {
		c.Messenger = messenger.New(messenger.Config{Logger: c.Logger})
	}
	if c.Store == nil {
		c.Store = storeagent.None("this agent has no store (agent.New without Config.Store)")
	}
	return &Agent{log: c.Logger, hooks: c.Hooks, msgr: c.Messenger, jobs: c.Scheduler, store: c.Store, fleet: c.Fleet}
}

// PID is the agent's process id.
func (a *Agent) PID() int { return os.Getpid() }

// Logger is the agent's logger, tagged with its role and pid.
func (a *Agent) Logger() *slog.Logger { return a.log }

// OnReady registers fn to run when the whole cluster is ready; if it
// already is, fn runs at once.
func (a *Agent) OnReady(fn func()) { a.hooks.OnReady(fn) }

// Messenger sends and receives the cluster's messages; the agent is where
// workers' Calls are usually answered (messenger.Messenger.Handle).
func (a *Agent) Messenger() *messenger.Messenger { return a.msgr }

// Store is the cluster's shared store (package store), the one every worker
// reaches through app.App.Store: in the agent, operations go straight to
// it. It is open from the WithAgent hooks until after the OnStop hooks.
func (a *Agent) Store() store.Store { return a.store }

// OnStop registers fn to run when the agent stops, which happens after every
// worker has stopped and after the agent's jobs have stopped. ctx ends with
// the shutdown timeout.
func (a *Agent) OnStop(fn func(ctx context.Context) error) { a.hooks.OnStop(fn) }

// Every runs job every d, once per machine, in the agent (with
// OncePerFleet: once per fleet of hosts). Register jobs in a
// framework.WithAgent hook: they start when the cluster is ready (every
// worker serving), the first run d after that; the agent that replaces a
// crashed one runs the hooks again, so the jobs resume there.
//
// A run gets a context that ends when the agent stops; stopping waits for
// running jobs up to the shutdown timeout, before the OnStop hooks. A job
// never overlaps itself: a tick that comes while the previous run is still
// going is skipped (and counted in Jobs). A job that returns an error or
// panics is logged with its name and keeps its schedule.
//
// Every panics if d <= 0, job is nil, or name is empty or already taken:
// like a chi route with a bad pattern, that is a mistake in the program,
// found the first time it starts. In a WithAgent hook the panic becomes the
// agent's boot error, so the cluster refuses to start and says why.
func (a *Agent) Every(d time.Duration, name string, job func(ctx context.Context) error, opts ...JobOption) {
	if job != nil {
		job = a.wrap(name, d, job, opts)
	}
	if err := a.jobs.Every(d, name, job); err != nil {
		panic(fmt.Sprintf("agent.Every: %v", err))
	}
}

// Cron runs job at the times a standard 5-field cron spec names ("minute
// hour day-of-month month day-of-week", or @hourly, @daily, "@every 5m"),
// evaluated in the local time zone unless the spec starts with
// "CRON_TZ=Europe/Berlin ". Runs behave as with Every. An invalid spec or a
// name already taken is an error wrapping schedule.ErrInvalidSchedule or
// schedule.ErrDuplicateName; return it from the hook to refuse to start.
func (a *Agent) Cron(spec, name string, job func(ctx context.Context) error, opts ...JobOption) error {
	if job != nil {
		job = a.wrap(name, 0, job, opts)
	}
	if err := a.jobs.Cron(spec, name, job); err != nil {
		return fmt.Errorf("agent.Cron: %w", err)
	}
	return nil
}

// Jobs returns the status of every job the agent runs, sorted by name:
// schedule, last start, last duration, last error, next run and counters.
// The workers' schedules that the agent drives (app.App.Every) are listed
// too, named "app:NAME".
func (a *Agent) Jobs() []schedule.JobStatus { return a.jobs.Status() }

// A JobOption changes how a job added with Every or Cron runs.
type JobOption int

// OncePerFleet runs the job on one host of the fleet per tick (see
// framework.WithFleet and package fleet), instead of on every host: on the
// host that holds the fleet's lease, which claims each tick in Redis first,
// so that no tick runs twice even if two hosts believe they lead. The
// job's context ends when the lease can no longer be trusted, before
// another host may take it; agent.EpochFromContext gives the lease's
// fencing epoch. In Jobs, a tick on a host that does not run it counts as
// a run that returned at once. Without a fleet configured, the job runs
// once per host, as without the option.
const OncePerFleet JobOption = 1

func (a *Agent) wrap(name string, every time.Duration, job func(context.Context) error, opts []JobOption) func(context.Context) error {
	fleet := false
	for _, o := range opts {
		fleet = fleet || o == OncePerFleet
	}
	if !fleet {
		return job
	}
	if a.fleet == nil {
		a.log.Info("OncePerFleet job runs once per host: no fleet configured (framework.WithFleet or $BROOD_FLEET_REDIS)", "job", name)
		return job
	}
	j := fleetlink.Job{Name: name, Every: every}
	return func(ctx context.Context) error {
		_, err := a.fleet.Run(ctx, j, job)
		return err
	}
}

// EpochFromContext returns the fencing epoch of the fleet lease under which
// a OncePerFleet job runs, from the job's context: a number that only grows
// and changes whenever another host takes the lease, so that the job's
// writes elsewhere can be refused when they carry an epoch older than one
// already seen. It is 0 outside such a job.
func EpochFromContext(ctx context.Context) int64 { return fleetlink.Epoch(ctx) }
