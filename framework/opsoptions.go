package framework

import (
	"fmt"
	"strconv"
	"time"
)

// opsConfig holds the options of zero-downtime operations: hang detection,
// recycling, the control socket and the pidfile.
type opsConfig struct {
	hangTimeout   time.Duration // 0: no hang detection
	maxRequests   uint64        // 0: never recycle by count
	maxJitter     uint64
	maxRSS        int64 // bytes; 0: no limit
	controlSocket string
	pidFile       string
}

// MaxHangTimeout bounds WithHangTimeout.
const MaxHangTimeout = 24 * time.Hour

// MinMaxRSS is the lowest memory limit WithMaxRSS and $BROOD_MAX_RSS
// accept: an idle worker of examples/hello uses about 9 MB.
const MinMaxRSS = 16 << 20

func defaultOpsConfig() opsConfig { return opsConfig{hangTimeout: 30 * time.Second} }

// WithHangTimeout replaces a worker whose in-flight requests make no
// progress (no response written, none completed) for d: it is hung (a
// deadlock, a stuck dependency). Default 30s; 0 turns detection off, which
// long-polling routes that stay silent longer than d need. The agent gets
// the same detection: one whose On functions handle nothing for d while
// messages wait is replaced, and the calls it never started go to the next
// agent (see package messenger). Overridden by $BROOD_HANG_TIMEOUT.
func WithHangTimeout(d time.Duration) Option {
	return func(c *config) { c.ops.hangTimeout = d; c.source["hang_timeout"] = "code" }
}

// WithMaxRequests replaces a worker, through the rolling path so that
// nothing is dropped, after it has served n requests plus a random number up
// to jitter, so that workers do not recycle together. 0 (the default) never
// recycles. Overridden by $BROOD_MAX_REQUESTS and $BROOD_MAX_REQUESTS_JITTER.
func WithMaxRequests(n, jitter uint64) Option {
	return func(c *config) {
		c.ops.maxRequests, c.ops.maxJitter = n, jitter
		c.source["max_requests"], c.source["max_requests_jitter"] = "code", "code"
	}
}

// WithMaxRSS replaces a worker whose resident memory exceeds bytes (checked
// every second; Linux only). 0, the default, sets no limit; a limit below
// MinMaxRSS is refused, since no worker could stay under it. Overridden by
// $BROOD_MAX_RSS, which takes units: "512MB".
func WithMaxRSS(bytes int64) Option {
	return func(c *config) { c.ops.maxRSS = bytes; c.source["max_rss"] = "code" }
}

// WithControlSocket sets the path of the master's control socket, which
// cmd/broodctl talks to. By default it lives in a per-user runtime
// directory, named after the application and port; "-" turns it off.
// Overridden by $BROOD_CONTROL_SOCKET.
func WithControlSocket(path string) Option {
	return func(c *config) { c.ops.controlSocket = path; c.source["control_socket"] = "code" }
}

// WithPIDFile makes the master write its pid to path while it runs.
// Overridden by $BROOD_PIDFILE.
func WithPIDFile(path string) Option {
	return func(c *config) { c.ops.pidFile = path; c.source["pid_file"] = "code" }
}

func (c *config) validateOps(name func(key, opt string) string) []error {
	var errs []error
	if t := c.ops.hangTimeout; t < 0 || t > MaxHangTimeout {
		errs = append(errs, &ConfigError{name("hang_timeout", "WithHangTimeout"), t.String(), fmt.Sprintf("want 0s (off) or a duration up to %s", MaxHangTimeout), nil})
	} else if t > 0 && t < 100*time.Millisecond {
		errs = append(errs, &ConfigError{name("hang_timeout", "WithHangTimeout"), t.String(), "want 0s (off) or at least 100ms: heartbeats come every few hundred milliseconds", nil})
	}
	if m := c.ops.maxRSS; m < 0 || (m > 0 && m < MinMaxRSS) {
		errs = append(errs, &ConfigError{name("max_rss", "WithMaxRSS"), strconv.FormatInt(m, 10),
			fmt.Sprintf("want 0 (no limit) or at least %d bytes (16 MiB): an idle worker already uses about 9 MB, so a lower limit would replace every worker every second", MinMaxRSS), nil})
	}
	return errs
}

// housekeepingEvery is how often the master checks heartbeats and memory,
// and how often workers send heartbeats: often enough that a hang is seen
// within a quarter of the timeout.
func (c *config) housekeepingEvery() time.Duration {
	d := time.Second
	if t := c.ops.hangTimeout; t > 0 && t/4 < d {
		d = t / 4
	}
	return max(d, 25*time.Millisecond)
}
