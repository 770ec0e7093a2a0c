package app

import (
	"context"
	"log/slog"
	"os"

	"github.com/broodhq/brood/internal/lifecycle"
	"github.com/broodhq/brood/messenger"
)

// App is one worker process's view of the cluster.
type App struct {
	slot  int
	log   *slog.Logger
	hooks *lifecycle.Hooks
	msgr  *messenger.Messenger
}

// Config describes a worker to New.
type Config struct {
	Slot   int          // worker slot, from 1
	Logger *slog.Logger // nil: slog.Default()
	Hooks  *lifecycle.Hooks
	// Messenger is the worker's messenger; nil: one outside any cluster,
	// whose sends fail with messenger.ErrNoCluster.
	Messenger *messenger.Messenger
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
	return &App{slot: c.Slot, log: c.Logger, hooks: c.Hooks, msgr: c.Messenger}
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

// OnStop registers fn to run when this worker stops, after it has stopped
// accepting requests and finished the ones in flight. ctx ends with the
// shutdown timeout.
func (a *App) OnStop(fn func(ctx context.Context) error) { a.hooks.OnStop(fn) }

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
