package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
)

// Hooks is a role's set of OnReady and OnStop callbacks. The zero value is
// not usable; use New.
type Hooks struct {
	log *slog.Logger

	mu      sync.Mutex
	ready   bool
	onReady []func()
	onStop  []func(context.Context) error
}

// New returns empty hooks that log panics to log.
func New(log *slog.Logger) *Hooks { return &Hooks{log: log} }

// OnReady registers fn to run once the whole cluster is ready; after that it
// runs at once (in its own goroutine, so registering never blocks).
func (h *Hooks) OnReady(fn func()) {
	h.mu.Lock()
	ready := h.ready
	if !ready {
		h.onReady = append(h.onReady, fn)
	}
	h.mu.Unlock()
	if ready {
		go h.safe("OnReady", func() error { fn(); return nil })
	}
}

// OnStop registers fn to run when the process stops; the last registered
// runs first, like defer.
func (h *Hooks) OnStop(fn func(context.Context) error) {
	h.mu.Lock()
	h.onStop = append(h.onStop, fn)
	h.mu.Unlock()
}

// IsReady reports whether Ready has run.
func (h *Hooks) IsReady() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ready
}

// Ready runs the OnReady callbacks, once.
func (h *Hooks) Ready() {
	h.mu.Lock()
	if h.ready {
		h.mu.Unlock()
		return
	}
	h.ready = true
	fns := h.onReady
	h.onReady = nil
	h.mu.Unlock()
	for _, fn := range fns {
		h.safe("OnReady", func() error { fn(); return nil })
	}
}

// Stop runs the OnStop callbacks in reverse order and joins their errors.
func (h *Hooks) Stop(ctx context.Context) error {
	h.mu.Lock()
	fns := h.onStop
	h.onStop = nil
	h.mu.Unlock()
	var errs []error
	for i := len(fns) - 1; i >= 0; i-- {
		if err := h.safe("OnStop", func() error { return fns[i](ctx) }); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// safe runs fn, turning a panic into a logged error: a user's hook must not
// take the process down with it.
func (h *Hooks) safe(what string, fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s hook panicked: %v", what, p)
			h.log.Error("hook panicked", "hook", what, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	return fn()
}
