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
	"sync/atomic"
	"time"

	"github.com/broodhq/brood/app"
	"github.com/broodhq/brood/internal/lifecycle"
	"github.com/broodhq/brood/middleware"
)

// Default server limits every worker applies (see ServerLimits); slow or
// oversized request headers must not tie up a worker.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
)

func runWorker(h http.Handler, c *config, log *slog.Logger, ch *channel, term chan os.Signal) error {
	slot, _ := strconv.Atoi(os.Getenv(envSlot))
	f := os.NewFile(fdSlot, "brood-slot")
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return ch.bootFailed(fmt.Errorf("worker %d: take over slot socket: %w", slot, err))
	}

	hooks := lifecycle.New(log)
	a := app.New(app.Config{Slot: slot, Logger: log, Hooks: hooks})
	for _, hook := range c.appHooks {
		if err := callHook(func() error { return hook(a) }); err != nil {
			ln.Close()
			return ch.bootFailed(fmt.Errorf("worker %d: WithApp hook: %w", slot, err))
		}
	}

	var draining atomic.Bool
	ready := func() bool { return hooks.IsReady() && !draining.Load() }
	limits := c.limits.withDefaults()
	srv := &http.Server{
		Handler:           c.chain(h, log, ready),
		ReadHeaderTimeout: limits.ReadHeaderTimeout,
		ReadTimeout:       limits.ReadTimeout,
		WriteTimeout:      limits.WriteTimeout,
		IdleTimeout:       limits.IdleTimeout,
		MaxHeaderBytes:    limits.MaxHeaderBytes,
		TLSConfig:         c.tls.serverTLSConfig(),
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return app.NewContext(context.Background(), a) },
	}
	served := make(chan error, 1)
	go func() { served <- c.serve(srv, ln) }()
	ch.send(control(ctlReady, nil))

	timeout, err := ch.waitStop(c, term, hooks.Ready, served)
	if err != nil {
		srv.Close()
		if errors.Is(err, ErrMasterGone) {
			return err
		}
		return fmt.Errorf("worker %d: serve: %w", slot, err)
	}
	draining.Store(true)
	ctx, cancel := stopContext(timeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		if timeout > 0 {
			log.Warn("requests still in flight at the shutdown timeout; closing them", "err", context.Cause(ctx))
		}
		srv.Close()
	}
	<-served
	if err := hooks.Stop(ctx); err != nil {
		log.Error("OnStop hook failed", "err", err)
	}
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
