package agent

import (
	"context"
	"log/slog"
	"os"

	"github.com/broodhq/brood/internal/lifecycle"
)

// Agent is the agent process's view of the cluster.
type Agent struct {
	log   *slog.Logger
	hooks *lifecycle.Hooks
}

// Config describes the agent to New.
type Config struct {
	Logger *slog.Logger // nil: slog.Default()
	Hooks  *lifecycle.Hooks
}

// New returns an Agent. framework.Run creates the real one.
func New(c Config) *Agent {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Hooks == nil {
		c.Hooks = lifecycle.New(c.Logger)
	}
	return &Agent{log: c.Logger, hooks: c.Hooks}
}

// PID is the agent's process id.
func (a *Agent) PID() int { return os.Getpid() }

// Logger is the agent's logger, tagged with its role and pid.
func (a *Agent) Logger() *slog.Logger { return a.log }

// OnReady registers fn to run when the whole cluster is ready; if it
// already is, fn runs at once.
func (a *Agent) OnReady(fn func()) { a.hooks.OnReady(fn) }

// OnStop registers fn to run when the agent stops, which happens after every
// worker has stopped. ctx ends with the shutdown timeout.
func (a *Agent) OnStop(fn func(ctx context.Context) error) { a.hooks.OnStop(fn) }
