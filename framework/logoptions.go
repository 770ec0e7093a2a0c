package framework

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Limits and defaults of the log file options.
const (
	MaxLogKeep       = 10000
	minLogMaxSize    = 4 << 10 // smaller would rotate on every check
	defaultLogKeep   = 14
	logCheckInterval = time.Second // how often the agent looks at the files' sizes
)

// logConfig is the log file part of config.
type logConfig struct {
	dir      string
	maxSize  int64 // bytes; 0: no size-based rotation
	keep     int   // rotated files kept per log file; 0: all
	compress bool
	daily    bool
	check    time.Duration // size check interval; tests shorten it
}

// WithLogDir makes every process write JSON lines to files in dir instead of
// the console: app.log gets the slog records of the master, the agent and
// every worker (framework and user records alike), access.log one line per
// request. The master creates dir if needed. The master's own records also
// still go to stderr, so a terminal or a service manager keeps seeing
// startup, restarts and stop, and a logger given with WithLogger keeps
// receiving every record too. access.log is written by the default
// middleware chain; a chain given with WithMiddleware logs requests where
// its own AccessLog says. "" (the default) keeps everything on the
// console. Overridden by $BROOD_LOG_DIR.
//
// The agent rotates both files daily at local midnight (WithLogDaily) and
// when one grows past WithLogMaxSize, keeps WithLogKeep rotated files of
// each, optionally gzipped (WithLogCompress), and has every process reopen
// the files after each rotation. SIGUSR1 to the master makes every process
// reopen them too, for an external logrotate.
func WithLogDir(dir string) Option {
	return func(c *config) { c.logs.dir = dir; c.source["log_dir"] = "code" }
}

// WithLogMaxSize rotates a log file once it holds at least bytes bytes
// (checked every second; 0, the default, rotates by date only).
// Overridden by $BROOD_LOG_MAX_SIZE, which takes units: "100MB", "1GiB".
func WithLogMaxSize(bytes int64) Option {
	return func(c *config) { c.logs.maxSize = bytes; c.source["log_max_size"] = "code" }
}

// WithLogKeep sets how many rotated files of each log file are kept; older
// ones are deleted (default 14; 0 keeps them all). Overridden by
// $BROOD_LOG_KEEP.
func WithLogKeep(n int) Option {
	return func(c *config) { c.logs.keep = n; c.source["log_keep"] = "code" }
}

// WithLogCompress gzips rotated log files once every process has reopened
// (default false). Overridden by $BROOD_LOG_COMPRESS (true or false).
func WithLogCompress(on bool) Option {
	return func(c *config) { c.logs.compress = on; c.source["log_compress"] = "code" }
}

// WithLogDaily turns the rotation at local midnight on or off (default on).
// Overridden by $BROOD_LOG_DAILY (true or false).
func WithLogDaily(on bool) Option {
	return func(c *config) { c.logs.daily = on; c.source["log_daily"] = "code" }
}

func defaultLogConfig() logConfig {
	return logConfig{keep: defaultLogKeep, daily: true, check: logCheckInterval}
}

func (c *config) validateLogs(name func(key, opt string) string) []error {
	var errs []error
	if m := c.logs.maxSize; m != 0 && m < minLogMaxSize {
		errs = append(errs, &ConfigError{name("log_max_size", "WithLogMaxSize"), strconv.FormatInt(m, 10),
			fmt.Sprintf("want 0 (rotate by date only) or at least %d bytes", minLogMaxSize), nil})
	}
	if k := c.logs.keep; k < 0 || k > MaxLogKeep {
		errs = append(errs, &ConfigError{name("log_keep", "WithLogKeep"), strconv.Itoa(k),
			fmt.Sprintf("want 0 (keep every rotated file) to %d", MaxLogKeep), nil})
	}
	if strings.ContainsRune(c.logs.dir, 0) {
		errs = append(errs, &ConfigError{name("log_dir", "WithLogDir"), strconv.Quote(c.logs.dir), "want a directory path", nil})
	}
	return errs
}
