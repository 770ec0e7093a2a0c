package framework

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/broodhq/brood/agent"
	"github.com/broodhq/brood/app"
	"github.com/broodhq/brood/internal/master"
	"github.com/broodhq/brood/internal/proc"
	"github.com/broodhq/brood/middleware"
)

// Limits on configuration values; a value outside them is refused before
// anything starts.
const (
	MaxWorkers         = 512
	MaxShutdownTimeout = 24 * time.Hour
	MaxStartTimeout    = time.Hour
)

// Option configures Run.
type Option func(*config)

type config struct {
	addr            string
	workers         int
	shutdownTimeout time.Duration
	startTimeout    time.Duration
	logger          *slog.Logger
	logFormat       string // auto, text, json
	logLevel        slog.Level
	agentHooks      []func(*agent.Agent) error
	appHooks        []func(*app.App) error
	name            string
	maxMessage      int
	middleware      []func(http.Handler) http.Handler
	customChain     bool // WithMiddleware was given: no default chain
	trusted         []string
	restartMin      time.Duration // restart backoff floor; tests shorten it
	logs            logConfig     // log files: logoptions.go
	ops             opsConfig     // reload, hang detection, recycling: opsoptions.go
	tls             tlsFiles      // WithTLS, $BROOD_TLS_CERT, $BROOD_TLS_KEY
	limits          ServerLimits  // WithServerLimits; zero fields mean defaults
	balance         string        // WithBalance, $BROOD_BALANCE: balanceoptions.go
	store           storeOptions  // WithDataDir, WithStore: storeoptions.go
	metrics         metricsConfig // WithMetricsAddr: metricsoptions.go
	fleetURL        string        // WithFleet, $BROOD_FLEET_REDIS: fleetoptions.go

	// where each value came from, for the effective-configuration log line
	source map[string]string
}

// WithAddr sets the address workers serve on, host:port (default ":8080").
// Overridden by $BROOD_ADDR, or by $PORT for the port alone.
func WithAddr(addr string) Option {
	return func(c *config) { c.addr = addr; c.source["addr"] = "code" }
}

// WithWorkers sets the number of worker processes (default: the CPUs this
// process may use, honouring a cgroup CPU quota). Overridden by $BROOD_WORKERS.
func WithWorkers(n int) Option {
	return func(c *config) { c.workers = n; c.source["workers"] = "code" }
}

// WithShutdownTimeout bounds how long a graceful stop waits for in-flight
// requests and stop hooks (default 30s). Overridden by $BROOD_SHUTDOWN_TIMEOUT.
func WithShutdownTimeout(d time.Duration) Option {
	return func(c *config) { c.shutdownTimeout = d; c.source["shutdown_timeout"] = "code" }
}

// WithStartTimeout bounds how long a child may take from exec to ready
// (default 60s). Overridden by $BROOD_START_TIMEOUT.
func WithStartTimeout(d time.Duration) Option {
	return func(c *config) { c.startTimeout = d; c.source["start_timeout"] = "code" }
}

// WithLogger sets the logger every process logs through; brood adds the
// role, slot and pid to it. By default brood logs to stderr, with colours
// (github.com/lmittmann/tint) at a terminal and JSON otherwise;
// $BROOD_LOG_FORMAT (auto, text, json) and $BROOD_LOG_LEVEL (debug, info,
// warn, error) change that.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithAgent registers a hook that runs only in the agent, before the workers
// start. An error stops the cluster from starting.
func WithAgent(fn func(*agent.Agent) error) Option {
	return func(c *config) { c.agentHooks = append(c.agentHooks, fn) }
}

// WithApp registers a hook that runs in every worker before it serves. An
// error fails that worker's start.
func WithApp(fn func(*app.App) error) Option {
	return func(c *config) { c.appHooks = append(c.appHooks, fn) }
}

// WithName sets the name processes carry in ps ("NAME: worker 2"); the
// default is the executable's base name.
func WithName(name string) Option {
	return func(c *config) { c.name = name; c.source["name"] = "code" }
}

// WithMiddleware replaces the chain of middleware that wraps the router in
// every worker. The default chain is middleware.Default: health probes
// (/healthz, /readyz), request ids, the access log and panic recovery.
// WithMiddleware() with no arguments serves the router bare.
func WithMiddleware(mw ...func(http.Handler) http.Handler) Option {
	return func(c *config) { c.middleware, c.customChain = mw, true }
}

// WithTrustedProxies lists the proxies (addresses or CIDR prefixes) whose
// X-Forwarded-For and X-Real-IP headers the default chain believes; from any
// other peer those headers are ignored. Overridden by $BROOD_TRUSTED_PROXIES
// (comma-separated).
func WithTrustedProxies(cidrs ...string) Option {
	return func(c *config) { c.trusted = cidrs; c.source["trusted_proxies"] = "code" }
}

func defaults() *config {
	name := "brood"
	if len(os.Args) > 0 {
		name = baseName(os.Args[0])
	}
	return &config{
		addr:            ":8080",
		workers:         proc.CPUs(),
		shutdownTimeout: 30 * time.Second,
		startTimeout:    60 * time.Second,
		logFormat:       "auto",
		logLevel:        slog.LevelInfo,
		name:            name,
		restartMin:      master.DefaultRestartMin,
		logs:            defaultLogConfig(),
		ops:             defaultOpsConfig(),
		source: map[string]string{
			"addr": "default", "workers": "default",
			"shutdown_timeout": "default", "start_timeout": "default", "name": "default",
		},
	}
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		p = p[i+1:]
	}
	return strings.TrimSuffix(p, ".exe")
}

// ConfigError names an option whose value is out of range.
type ConfigError struct {
	Option string // e.g. "WithWorkers" or "$BROOD_WORKERS"
	Value  string
	Want   string // what is accepted
	Err    error  // the parse error, if any
}

func (e *ConfigError) Error() string {
	s := fmt.Sprintf("invalid %s %s: %s", e.Option, e.Value, e.Want)
	if e.Err != nil {
		s += " (" + e.Err.Error() + ")"
	}
	return s
}

func (e *ConfigError) Unwrap() error { return e.Err }

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("configuration refused")

// resolve applies options, then the environment, then validates.
func resolve(opts []Option, getenv func(string) string) (*config, error) {
	c := defaults()
	for _, o := range opts {
		o(c)
	}
	errs := c.fromEnv(getenv)
	errs = append(errs, c.validate()...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return c, nil
}

func (c *config) validate() []error {
	var errs []error
	name := func(key, opt string) string {
		if s := c.source[key]; strings.HasPrefix(s, "$") {
			return s
		}
		return opt
	}
	if _, port, err := net.SplitHostPort(c.addr); err != nil {
		errs = append(errs, &ConfigError{name("addr", "WithAddr"), strconv.Quote(c.addr), `want host:port, e.g. ":8080" or "127.0.0.1:8080"`, err})
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		errs = append(errs, &ConfigError{name("addr", "WithAddr"), strconv.Quote(c.addr), "want a numeric port from 0 to 65535", nil})
	}
	if c.workers < 1 || c.workers > MaxWorkers {
		errs = append(errs, &ConfigError{name("workers", "WithWorkers"), strconv.Itoa(c.workers), fmt.Sprintf("workers must be between 1 and %d", MaxWorkers), nil})
	}
	if c.shutdownTimeout < 0 || c.shutdownTimeout > MaxShutdownTimeout {
		errs = append(errs, &ConfigError{name("shutdown_timeout", "WithShutdownTimeout"), c.shutdownTimeout.String(), fmt.Sprintf("want a duration from 0s to %s", MaxShutdownTimeout), nil})
	}
	if c.startTimeout <= 0 || c.startTimeout > MaxStartTimeout {
		errs = append(errs, &ConfigError{name("start_timeout", "WithStartTimeout"), c.startTimeout.String(), fmt.Sprintf("want a duration above 0s and at most %s", MaxStartTimeout), nil})
	}
	if _, err := middleware.ParsePrefixes(c.trusted...); err != nil {
		errs = append(errs, &ConfigError{name("trusted_proxies", "WithTrustedProxies"), strconv.Quote(strings.Join(c.trusted, ",")), `want IP addresses or CIDR prefixes such as "10.0.0.0/8"`, err})
	}
	if err := c.limits.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.tls.load(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.validateLogs(name)...)
	errs = append(errs, c.validateOps(name)...)
	errs = append(errs, c.validateMessaging()...)
	errs = append(errs, c.validateBalance(name)...)
	errs = append(errs, c.store.check(name)...)
	errs = append(errs, c.validateMetrics(name)...)
	errs = append(errs, c.validateFleet(name)...)
	switch c.logFormat {
	case "auto", "text", "json":
	default:
		errs = append(errs, &ConfigError{name("log_format", "$BROOD_LOG_FORMAT"), strconv.Quote(c.logFormat), "want auto, text or json", nil})
	}
	return errs
}
