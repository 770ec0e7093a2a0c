package framework

import (
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/broodhq/brood/internal/fleetlink"
	"github.com/broodhq/brood/internal/storeagent"
	"github.com/broodhq/brood/logfile"
)

// fromEnv applies brood's environment variables over the options. It is the
// one place that reads them (child.FromEnv reads what a master sets for its
// children): each value taken is recorded in c.source as "$NAME", so that
// validation names the variable, and each value that does not parse is an
// error naming it.
func (c *config) fromEnv(getenv func(string) string) []error {
	e := &envReader{getenv: getenv, c: c}
	if v := getenv("PORT"); v != "" {
		host, _, err := net.SplitHostPort(c.addr)
		if p, perr := strconv.Atoi(v); err != nil || perr != nil || p < 0 || p > 65535 {
			e.fail("PORT", v, "want a port number from 0 to 65535", perr)
		} else {
			c.addr, c.source["addr"] = net.JoinHostPort(host, v), "$PORT"
		}
	}
	envValue(e, "addr", "BROOD_ADDR", &c.addr, parseString, "")
	envValue(e, "workers", "BROOD_WORKERS", &c.workers, strconv.Atoi, "want a whole number")
	envValue(e, "shutdown_timeout", "BROOD_SHUTDOWN_TIMEOUT", &c.shutdownTimeout, time.ParseDuration, wantDuration)
	envValue(e, "start_timeout", "BROOD_START_TIMEOUT", &c.startTimeout, time.ParseDuration, wantDuration)
	envValue(e, "trusted_proxies", "BROOD_TRUSTED_PROXIES", &c.trusted, parseList, "")
	envValue(e, "log_format", "BROOD_LOG_FORMAT", &c.logFormat, parseString, "")
	envValue(e, "log_level", "BROOD_LOG_LEVEL", &c.logLevel, parseLevel, "want debug, info, warn or error")
	c.tls.fromEnv(getenv)

	envValue(e, "log_dir", "BROOD_LOG_DIR", &c.logs.dir, parseString, "")
	envValue(e, "log_max_size", "BROOD_LOG_MAX_SIZE", &c.logs.maxSize, parseSizeOrZero, `want a size such as "100MB" or "1GiB", or 0 to rotate by date only`)
	envValue(e, "log_keep", "BROOD_LOG_KEEP", &c.logs.keep, strconv.Atoi, "want a whole number")
	envValue(e, "log_compress", "BROOD_LOG_COMPRESS", &c.logs.compress, strconv.ParseBool, "want true or false")
	envValue(e, "log_daily", "BROOD_LOG_DAILY", &c.logs.daily, strconv.ParseBool, "want true or false")

	envValue(e, "hang_timeout", "BROOD_HANG_TIMEOUT", &c.ops.hangTimeout, time.ParseDuration, wantDuration)
	envValue(e, "max_requests", "BROOD_MAX_REQUESTS", &c.ops.maxRequests, parseUint, "want a whole number, 0 or more")
	envValue(e, "max_requests_jitter", "BROOD_MAX_REQUESTS_JITTER", &c.ops.maxJitter, parseUint, "want a whole number, 0 or more")
	envValue(e, "max_rss", "BROOD_MAX_RSS", &c.ops.maxRSS, parseSizeOrZero, `want a size such as "512MB" or "1GiB", or 0 for no limit`)
	envValue(e, "control_socket", "BROOD_CONTROL_SOCKET", &c.ops.controlSocket, parseString, "")
	envValue(e, "pid_file", "BROOD_PIDFILE", &c.ops.pidFile, parseString, "")
	envValue(e, "balance", "BROOD_BALANCE", &c.balance, parseString, "")
	envValue(e, "metrics_addr", "BROOD_METRICS_ADDR", &c.metrics.addr, parseAddrOrOff, "")
	envValue(e, "store", storeagent.EnvStore, &c.store.url, parseString, "")
	envValue(e, "data_dir", storeagent.EnvDataDir, &c.store.dataDir, parseString, "")
	envValue(e, "store_sync", storeagent.EnvSync, &c.store.sync, strconv.ParseBool, "want 1 or 0")
	envValue(e, "fleet", fleetlink.EnvRedis, &c.fleetURL, parseString, "")
	return e.errs
}

const wantDuration = `want a duration such as "30s" or "1m"`

type envReader struct {
	getenv func(string) string
	c      *config
	errs   []error
}

func (e *envReader) fail(name, v, want string, err error) {
	e.errs = append(e.errs, &ConfigError{"$" + name, strconv.Quote(v), want, err})
}

// envValue sets *dst from $name when it is set and parses, recording the
// source under key.
func envValue[T any](e *envReader, key, name string, dst *T, parse func(string) (T, error), want string) {
	v := e.getenv(name)
	if v == "" {
		return
	}
	x, err := parse(strings.TrimSpace(v))
	if err != nil {
		e.fail(name, v, want, err)
		return
	}
	*dst, e.c.source[key] = x, "$"+name
}

func parseString(s string) (string, error) { return s, nil }

// parseAddrOrOff reads an address where "-" turns off what an option in
// code turned on.
func parseAddrOrOff(s string) (string, error) {
	if s == "-" {
		return "", nil
	}
	return s, nil
}

func parseList(s string) ([]string, error) { return strings.Split(s, ","), nil }

func parseUint(s string) (uint64, error) { return strconv.ParseUint(s, 10, 64) }

func parseSizeOrZero(s string) (int64, error) {
	if s == "0" {
		return 0, nil
	}
	return logfile.ParseSize(s)
}

func parseLevel(s string) (l slog.Level, err error) {
	err = l.UnmarshalText([]byte(s))
	return l, err
}
