package worker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/broodhq/brood/app"
	"github.com/broodhq/brood/internal/child"
	"github.com/broodhq/brood/internal/lifecycle"
	"github.com/broodhq/brood/internal/protocol"
	"github.com/broodhq/brood/internal/workerjobs"
	"github.com/broodhq/brood/metrics"
	"github.com/broodhq/brood/middleware"
)

// Config is a worker's runtime configuration, built once by framework.Run
// from the resolved options and the environment the master set.
type Config struct {
	Log     *slog.Logger
	Slot    int
	Sockets []string // slot sockets inherited from protocol.FDSlot on, own first

	Handler http.Handler
	Hooks   []func(*app.App) error // WithApp

	// The chain: Middleware as given (WithMiddleware), or with DefaultChain
	// middleware.DefaultSplit over AccessLog and Trusted.
	Middleware   []func(http.Handler) http.Handler
	DefaultChain bool
	Trusted      []netip.Prefix
	AccessLog    *slog.Logger

	Server Limits      // with defaults filled in
	TLS    *tls.Config // nil: plain HTTP

	ShutdownTimeout time.Duration // when stopped by a signal
	Heartbeat       time.Duration // how often to report to the master
	MaxRequests     uint64        // recycle after this many (0: never)
	MaxJitter       uint64        // plus a random number up to this
}

// Limits are the http.Server's limits (framework.ServerLimits, resolved).
type Limits struct {
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	MaxHeaderBytes                                            int
}

const (
	// drainIdleGrace bounds how long a worker that stops with the cluster
	// waits for its keep-alive clients to come back for a last response.
	// A worker whose sockets are handed over waits on the clients'
	// timescale instead (see Run).
	drainIdleGrace = 2 * time.Second
	// stopHooksReserve is the part of the shutdown timeout (at most a
	// quarter) that waiting for idle clients leaves to the jobs and the
	// OnStop hooks.
	stopHooksReserve = 5 * time.Second
)

// Run plays a worker: it takes over its slot sockets, runs the hooks,
// serves, and drains when told to stop.
//
// In order: the sockets; the application's API (app.New) and the WithApp
// hooks; the server on every socket; what reports on the worker (the
// heartbeat; per-worker metrics belong beside it); ready. The stop undoes
// them in reverse, the OnStop hooks last but the channel.
func Run(c Config, link *child.Link, term chan os.Signal) error {
	log, slot := c.Log, c.Slot
	lns, err := openSockets(c.Sockets)
	if err != nil {
		return link.BootFailed(fmt.Errorf("worker %d: %w", slot, err))
	}
	closeAll := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}

	hooks := lifecycle.New(log)
	schedules := workerjobs.New()
	draining := make(chan struct{})
	msgr := link.Messenger()
	a := app.New(app.Config{Slot: slot, Logger: log, Hooks: hooks, Messenger: msgr, Jobs: schedules, Draining: draining})
	if err := runHooks(a, c.Hooks); err != nil {
		closeAll()
		return link.BootFailed(fmt.Errorf("worker %d: %w", slot, err))
	}
	jobs := startWorkerSchedules(log, msgr, schedules)

	t := &tracker{}
	if err := t.gateShared(c.Sockets, lns, link); err != nil {
		closeAll()
		return link.BootFailed(fmt.Errorf("worker %d: %w", slot, err))
	}
	ready := func() bool { return hooks.IsReady() && !t.draining.Load() }
	t.next = c.chain(ready)
	srv := &http.Server{
		Handler:           t,
		ConnState:         t.connState,
		ReadHeaderTimeout: c.Server.ReadHeaderTimeout,
		ReadTimeout:       c.Server.ReadTimeout,
		WriteTimeout:      c.Server.WriteTimeout,
		IdleTimeout:       c.Server.IdleTimeout,
		MaxHeaderBytes:    c.Server.MaxHeaderBytes,
		TLSConfig:         c.TLS,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return app.NewContext(context.Background(), a) },
	}
	served := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { served <- c.serve(srv, ln) }()
	}
	// The shared socket (balance shared) is every worker's: counted in each
	// worker's queue, the cluster's sum would count it once per worker, so
	// it has gauges of its own, which the cluster view takes the largest of.
	var own, shared []net.Listener
	for i, ln := range lns {
		if c.Sockets[i] == protocol.SharedSocket {
			shared = append(shared, ln)
		} else {
			own = append(own, ln)
		}
	}
	if err := metrics.RegisterWorker(func() metrics.WorkerStats {
		s := metrics.WorkerStats{Requests: t.completed.Load(), InFlight: t.inFlight.Load(), Connections: t.conns.Load(), Accepted: t.accepted.Load()}
		s.Queued, s.Backlog, s.HasQueue = metrics.AcceptQueue(own)
		if len(shared) > 0 {
			s.SharedQueued, s.SharedBacklog, s.HasShared = metrics.AcceptQueue(shared)
		}
		return s
	}); err != nil {
		log.Warn("brood's worker metrics left out", "err", err)
	}
	reporter := metrics.StartReporter(context.Background(), msgr, slot, log)
	defer reporter.Stop(context.Background())
	hbCtx, stopHeartbeat := context.WithCancel(context.Background())
	hbDone := make(chan struct{})
	go func() { defer close(hbDone); t.heartbeat(hbCtx, c, link) }()
	defer func() { stopHeartbeat(); <-hbDone }()
	link.Ready()

	stop, err := link.WaitStop(c.ShutdownTimeout, term, hooks.Ready, served)
	timeout := stop.Timeout
	if err != nil {
		srv.Close()
		if errors.Is(err, child.ErrMasterGone) {
			return err
		}
		return fmt.Errorf("worker %d: serve: %w", slot, err)
	}
	t.draining.Store(true)
	close(draining) // app.Draining: long-lived connections may end now
	ctx, cancel := child.StopContext(timeout)
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
	// Closing an idle keep-alive connection races its client's next
	// request, which then fails. When another worker takes over, keep each
	// one until that request comes (answered with Connection: close) or
	// until net/http's own IdleTimeout closes it, exactly as it would
	// without a reload; only the shutdown timeout cuts that short, less
	// what is kept for the jobs and OnStop hooks.
	grace := min(timeout, drainIdleGrace)
	if stop.HandedOver {
		grace = timeout - min(timeout/4, stopHooksReserve)
	}
	t.drainIdle(ctx, grace)
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
	link.CloseMessenger(ctx)
	link.Close()
	return nil
}

// runHooks runs the WithApp hooks.
func runHooks(a *app.App, hooks []func(*app.App) error) error {
	for _, hook := range hooks {
		if err := child.CallHook(func() error { return hook(a) }); err != nil {
			return fmt.Errorf("WithApp hook: %w", err)
		}
	}
	return nil
}

// chain wraps the router in the configured middleware, outermost first.
func (c *Config) chain(ready func() bool) http.Handler {
	mw := c.Middleware
	if c.DefaultChain {
		access := c.AccessLog
		if access == nil {
			access = c.Log
		}
		mw = middleware.DefaultSplit(access, c.Log, ready, c.Trusted...) // access.log; errors stay in app.log
	}
	h := c.Handler
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// serve runs srv on ln until it stops: HTTPS when TLS is configured, else
// plain HTTP. ServeTLS keeps h2 and http/1.1 in NextProtos, so HTTP/2 is
// negotiated.
func (c *Config) serve(srv *http.Server, ln net.Listener) error {
	// Decided by the configuration, not by srv.TLSConfig: net/http fills
	// TLSConfig in when it sets up HTTP/2, so a second listener served on
	// the same server (a worker that took over a retired slot's socket)
	// would see one and try TLS without certificates.
	if c.TLS != nil {
		return srv.ServeTLS(ln, "", "")
	}
	return srv.Serve(ln)
}
