package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/broodhq/brood/internal/lifecycle"
	"github.com/broodhq/brood/internal/storeagent"
	"github.com/broodhq/brood/internal/workerjobs"
	"github.com/broodhq/brood/messenger"
	"github.com/broodhq/brood/store"
)

// App is one worker process's view of the cluster.
type App struct {
	slot     int
	log      *slog.Logger
	hooks    *lifecycle.Hooks
	msgr     *messenger.Messenger
	jobs     *workerjobs.Registry
	draining <-chan struct{}
	store    store.Store
}

// Config describes a worker to New.
type Config struct {
	Slot   int          // worker slot, from 1
	Logger *slog.Logger // nil: slog.Default()
	Hooks  *lifecycle.Hooks
	// Messenger is the worker's messenger; nil: one outside any cluster,
	// whose sends fail with messenger.ErrNoCluster.
	Messenger *messenger.Messenger
	// Jobs holds the schedules added with Every and Cron; nil: a new one.
	// framework.Run announces them to the agent, which drives them.
	Jobs *workerjobs.Registry
	// Draining is closed when the worker begins to stop; nil: never.
	Draining <-chan struct{}
	// Store is the cluster's store; nil: the agent's, through Messenger
	// (outside a cluster its calls fail with store.ErrUnavailable). Tests
	// of handlers may pass memstore.New().
	Store store.Store
}

// New returns an App. framework.Run creates the real one; tests of handlers
// that call FromContext can create their own and attach it with NewContext.
func New(c Config) *App {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Hooks == nil {
		c.Hooks = lifecycle.New(c.Logger)
	}
	if c.Messenger == nil {
		c.Messenger = messenger.New(messenger.Config{Logger: c.Logger})
	}
	if c.Jobs == nil {
		c.Jobs = workerjobs.New()
	}
	if c.Store == nil {
		c.Store = storeagent.NewClient(c.Messenger)
	}
	return &App{slot: c.Slot, log: c.Logger, hooks: c.Hooks, msgr: c.Messenger, jobs: c.Jobs, draining: c.Draining, store: c.Store}
}

// Slot is this worker's slot number, from 1 to the number of workers. A
// replacement for a crashed worker keeps the slot of the one it replaces.
func (a *App) Slot() int { return a.slot }

// PID is this worker's process id.
func (a *App) PID() int { return os.Getpid() }

// Logger is the worker's logger, tagged with role, slot and pid.
func (a *App) Logger() *slog.Logger { return a.log }

// OnReady registers fn to run when the whole cluster (agent and every
// worker) is ready; if it already is, fn runs at once.
func (a *App) OnReady(fn func()) { a.hooks.OnReady(fn) }

// Messenger sends and receives the cluster's messages. In a handler:
// app.FromContext(r.Context()).Messenger().
func (a *App) Messenger() *messenger.Messenger { return a.msgr }

// Store is the cluster's shared store (package store): every worker and the
// agent see the same keys. In a handler: app.FromContext(r.Context()).Store().
// By default it lives in the agent, and each operation is a call to it
// through the messenger; it works from a WithApp hook on, and fails with
// store.ErrClosed once the worker has stopped.
func (a *App) Store() store.Store { return a.store }

// OnStop registers fn to run when this worker stops, after it has stopped
// accepting requests and finished the ones in flight. ctx ends with the
// shutdown timeout.
func (a *App) OnStop(fn func(ctx context.Context) error) { a.hooks.OnStop(fn) }

// Draining is closed when this worker begins to stop: a graceful stop, or
// a reload, a scale-down or a recycle replacing it. It stops accepting
// connections and finishes the requests it has, and it waits, up to the
// shutdown timeout, for handlers that took their connection over with
// Hijack (WebSockets) to return. Handlers of long-lived connections (a
// WebSocket, a server-sent event stream) should watch Draining and end
// the connection cleanly, so that the client reconnects to a worker that
// stays; a stream that keeps going holds this worker until the timeout.
func (a *App) Draining() <-chan struct{} { return a.draining }

type ctxKey struct{}

// NewContext returns ctx carrying a.
func NewContext(ctx context.Context, a *App) context.Context {
	return context.WithValue(ctx, ctxKey{}, a)
}

// FromContext returns the App of the worker serving the request, or nil
// outside a brood worker.
func FromContext(ctx context.Context) *App {
	a, _ := ctx.Value(ctxKey{}).(*App)
	return a
}

// Mode says which workers run each tick of a schedule added with Every or
// Cron.
type Mode int

const (
	// OneWorker runs each tick in one ready worker, chosen at random
	// (egg-schedule's type "worker").
	OneWorker Mode = iota
	// AllWorkers runs each tick in every ready worker (egg-schedule's type
	// "all").
	AllWorkers
)

// Every runs job every d in one worker or in all of them (mode), on the
// agent's clock: the agent keeps the schedule, once per machine however
// many workers there are, and at each tick asks the chosen worker or every
// ready worker to run job. Register schedules in a framework.WithApp hook,
// under the same names with the same schedules in every worker: the agent
// schedules each name once, from the first worker that announces it, and
// logs an error for a worker that announces a name with another schedule.
// The agent's jobs status lists them as "app:NAME".
//
// A run gets a context that ends when this worker stops; stopping waits for
// running jobs up to the shutdown timeout, before the OnStop hooks. A job
// does not overlap itself: the agent skips a tick while the previous one is
// still running, and a worker refuses a run while its own previous run of
// the job is going. A job that returns an error or panics is logged with its
// name and keeps its schedule. Ticks continue across worker restarts,
// rolling reloads and agent restarts (a new agent asks the workers to
// announce their schedules again); a tick that comes while no ready worker
// has the job is logged as a failed run.
//
// Every panics if d <= 0, job is nil, or name is empty or already taken;
// in a WithApp hook the panic becomes the worker's boot error.
func (a *App) Every(d time.Duration, name string, job func(ctx context.Context) error, mode Mode) {
	if err := a.jobs.Add(workerjobs.Spec{Name: name, Every: d, All: mode == AllWorkers}, job); err != nil {
		panic(fmt.Sprintf("app.Every: %v", err))
	}
}

// Cron is Every on a standard 5-field cron spec ("minute hour day-of-month
// month day-of-week", or @hourly, @daily, "@every 5m"), evaluated in the
// agent's local time zone unless the spec starts with "CRON_TZ=Area/City ".
// An invalid spec or a name already taken is an error wrapping
// schedule.ErrInvalidSchedule or schedule.ErrDuplicateName.
func (a *App) Cron(spec, name string, job func(ctx context.Context) error, mode Mode) error {
	if err := a.jobs.Add(workerjobs.Spec{Name: name, Cron: spec, All: mode == AllWorkers}, job); err != nil {
		return fmt.Errorf("app.Cron: %w", err)
	}
	return nil
}
