package framework

import (
	"net/http"
	"os"

	"github.com/broodhq/brood/internal/agentproc"
	"github.com/broodhq/brood/internal/child"
	"github.com/broodhq/brood/internal/master"
	"github.com/broodhq/brood/internal/proclog"
	"github.com/broodhq/brood/internal/worker"
	"github.com/broodhq/brood/middleware"
)

// The resolved options, handed to each role's runtime as a small config of
// its own. A new feature's settings reach its role here: a field of
// master.Config, agentproc.Config or worker.Config, filled from the option,
// and read by that role's Run where its startup says.

func (c *config) logSettings() proclog.Settings {
	return proclog.Settings{
		Logger: c.logger, Format: c.logFormat, Level: c.logLevel,
		Dir: c.logs.dir, DirFrom: c.source["log_dir"],
		MaxSize: c.logs.maxSize, Keep: c.logs.keep, Compress: c.logs.compress, Daily: c.logs.daily,
	}
}

func (c *config) masterConfig(p *proclog.Process) *master.Config {
	return &master.Config{
		Log:             p.Log,
		Addr:            c.addr,
		Workers:         c.workers,
		MaxWorkers:      MaxWorkers,
		ShutdownTimeout: c.shutdownTimeout,
		StartTimeout:    c.startTimeout,
		Name:            c.name,
		MaxMessage:      c.maxMessage,
		RestartMin:      c.restartMin,
		HangTimeout:     c.ops.hangTimeout,
		MaxRSS:          c.ops.maxRSS,
		Housekeeping:    c.housekeepingEvery(),
		ControlSocket:   c.ops.controlSocket,
		PIDFile:         c.ops.pidFile,
		Scheme:          c.scheme(),
		ShareCPUs:       os.Getenv("GOMAXPROCS") == "",
		Sticky:          c.balancePolicy() == BalanceSticky,
		Shared:          c.balancePolicy() == BalanceShared,
		ReopenLogs:      p.Reopener(),
		Describe: []any{
			"addr", c.addr, "addr_from", c.source["addr"],
			"workers", c.workers, "workers_from", c.source["workers"],
			"shutdown_timeout", c.shutdownTimeout.String(), "start_timeout", c.startTimeout.String(),
			"hang_timeout", c.ops.hangTimeout.String(), "max_requests", c.ops.maxRequests, "max_rss", c.ops.maxRSS,
			"balance", c.balancePolicy(),
		},
	}
}

func (c *config) agentConfig(p *proclog.Process) agentproc.Config {
	ac := agentproc.Config{Log: p.Log, Hooks: c.agentHooks, ShutdownTimeout: c.shutdownTimeout,
		Store: c.storeConfig(), MetricsAddr: c.metrics.addr, Heartbeat: c.housekeepingEvery()}
	if c.logs.dir != "" {
		ac.Rotation = &agentproc.RotationConfig{
			Dir: c.logs.dir, MaxSize: c.logs.maxSize, Keep: c.logs.keep,
			Compress: c.logs.compress, Daily: c.logs.daily, Check: c.logs.check,
		}
	}
	if fleet, store, from := c.fleetConfig(); fleet != "" {
		ac.FleetURL, ac.Addr = fleet, c.addr
		if store != "" {
			ac.Store.URL, ac.Store.URLFrom = store, from
		}
	}
	return ac
}

func (c *config) workerConfig(h http.Handler, p *proclog.Process, env child.Env) worker.Config {
	trusted, _ := middleware.ParsePrefixes(c.trusted...) // validated by resolve
	l := c.limits.withDefaults()
	return worker.Config{
		Log:          p.Log,
		Slot:         env.Slot,
		Sockets:      env.Sockets,
		Handler:      h,
		Hooks:        c.appHooks,
		Middleware:   c.middleware,
		DefaultChain: !c.customChain,
		Trusted:      trusted,
		AccessLog:    p.AccessLogger(),
		Server: worker.Limits{
			ReadHeaderTimeout: l.ReadHeaderTimeout, ReadTimeout: l.ReadTimeout,
			WriteTimeout: l.WriteTimeout, IdleTimeout: l.IdleTimeout, MaxHeaderBytes: l.MaxHeaderBytes,
		},
		TLS:             c.tls.serverTLSConfig(),
		ShutdownTimeout: c.shutdownTimeout,
		Heartbeat:       c.housekeepingEvery(),
		MaxRequests:     c.ops.maxRequests,
		MaxJitter:       c.ops.maxJitter,
	}
}
