package framework

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/broodhq/brood/app"
	"github.com/broodhq/brood/internal/lifecycle"
	"github.com/broodhq/brood/internal/workerjobs"
	"github.com/broodhq/brood/metrics"
	"github.com/broodhq/brood/middleware"
)

// Default server limits every worker applies (see ServerLimits); slow or
// oversized request headers must not tie up a worker.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
	// drainIdleGrace bounds how long a draining worker waits for its
	// keep-alive clients to come back for a last response.
	drainIdleGrace = 2 * time.Second
)

func runWorker(h http.Handler, c *config, log *slog.Logger, ch *channel, term chan os.Signal) error {
	slot, _ := strconv.Atoi(os.Getenv(envSlot))
	lns, err := openSockets(slot)
	if err != nil {
		return ch.bootFailed(fmt.Errorf("worker %d: %w", slot, err))
	}
	closeAll := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}

	hooks := lifecycle.New(log)
	schedules := workerjobs.New()
	draining := make(chan struct{})
	a := app.New(app.Config{Slot: slot, Logger: log, Hooks: hooks, Messenger: ch.msgr, Jobs: schedules, Draining: draining})
	for _, hook := range c.appHooks {
		if err := callHook(func() error { return hook(a) }); err != nil {
			closeAll()
			return ch.bootFailed(fmt.Errorf("worker %d: WithApp hook: %w", slot, err))
		}
	}
	jobs := startWorkerSchedules(log, ch.msgr, schedules)

	t := &tracker{}
	ready := func() bool { return hooks.IsReady() && !t.draining.Load() }
	t.next = c.chain(h, log, ready)
	limits := c.limits.withDefaults()
	srv := &http.Server{
		Handler:           t,
		ConnState:         t.connState,
		ReadHeaderTimeout: limits.ReadHeaderTimeout,
		ReadTimeout:       limits.ReadTimeout,
		WriteTimeout:      limits.WriteTimeout,
		IdleTimeout:       limits.IdleTimeout,
		MaxHeaderBytes:    limits.MaxHeaderBytes,
		TLSConfig:         c.tls.serverTLSConfig(),
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return app.NewContext(context.Background(), a) },
	}
	served := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { served <- c.serve(srv, ln) }()
	}
	if err := metrics.RegisterWorker(func() metrics.WorkerStats {
		q, backlog, ok := metrics.AcceptQueue(lns)
		return metrics.WorkerStats{Requests: t.completed.Load(), InFlight: t.inFlight.Load(), Connections: t.conns.Load(),
			Queued: q, Backlog: backlog, HasQueue: ok}
	}); err != nil {
		log.Warn("brood's worker metrics left out", "err", err)
	}
	reporter := metrics.StartReporter(context.Background(), ch.msgr, slot, log)
	defer reporter.Stop(context.Background())
	hbCtx, stopHeartbeat := context.WithCancel(context.Background())
	hbDone := make(chan struct{})
	go func() { defer close(hbDone); t.heartbeat(hbCtx, c, ch) }()
	defer func() { stopHeartbeat(); <-hbDone }()
	ch.send(control(ctlReady, nil))

	timeout, err := ch.waitStop(c, term, hooks.Ready, served)
	if err != nil {
		srv.Close()
		if errors.Is(err, ErrMasterGone) {
			return err
		}
		return fmt.Errorf("worker %d: serve: %w", slot, err)
	}
	t.draining.Store(true)
	close(draining) // app.Draining: long-lived connections may end now
	ctx, cancel := stopContext(timeout)
	defer cancel()
	// Stop accepting first: the sockets stay open in the master, so what
	// is queued on them waits for the worker that replaces this one.
	closeAll()
	// An accept loop may hold a connection it accepted just before its
	// listener closed; net/http registers it only when it hands it over. A
	// Shutdown that ran first would close it unanswered, so wait for every
	// loop to return before counting connections.
	for range lns {
		<-served
	}
	t.drainIdle(ctx, min(timeout, drainIdleGrace))
	if err := srv.Shutdown(ctx); err != nil {
		if ctx.Err() != nil && timeout > 0 {
			log.Warn("requests still in flight at the shutdown timeout; closing them", "err", context.Cause(ctx))
		}
		srv.Close()
	}
	// Shutdown does not wait for hijacked connections; their handlers were
	// told (Draining) and get until the timeout, as requests do.
	if n := t.waitHijacked(ctx); n > 0 && timeout > 0 {
		log.Warn("hijacked connections still open at the shutdown timeout; closing them", "count", n, "err", context.Cause(ctx))
	}
	reporter.Stop(ctx) // what the worker counted while it drained
	jobs.stop(ctx)     // before the OnStop hooks, which may close what jobs use
	if err := hooks.Stop(ctx); err != nil {
		log.Error("OnStop hook failed", "err", err)
	}
	ch.closeMessenger(ctx)
	ch.conn.Close(time.Second)
	return nil
}

// chain wraps the router in the configured middleware, outermost first.
func (c *config) chain(h http.Handler, log *slog.Logger, ready func() bool) http.Handler {
	mw := c.middleware
	if !c.customChain {
		trusted, _ := middleware.ParsePrefixes(c.trusted...) // validated by resolve
		access := log
		if f := c.logs.files; f != nil && f.accessLog != nil {
			access = f.accessLog // access.log; errors stay in app.log
		}
		mw = middleware.DefaultSplit(access, log, ready, trusted...)
	}
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}
