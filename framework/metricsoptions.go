package framework

import (
	"net"
	"strconv"
)

// metricsConfig holds the metrics options.
type metricsConfig struct {
	addr string // where the agent serves /metrics; empty: nowhere
}

// WithMetricsAddr makes the agent serve the whole cluster's Prometheus
// metrics at http://addr/metrics (and the per-slot view at
// /metrics/slots) on a listener of its own, apart from the application's
// port: "127.0.0.1:9090" keeps it off the network. Empty, the default,
// serves nothing; metrics.Handler() mounted on the router serves the same
// view. Overridden by $BROOD_METRICS_ADDR ("-" turns it off). See package
// metrics for what the view holds.
func WithMetricsAddr(addr string) Option {
	return func(c *config) { c.metrics.addr = addr; c.source["metrics_addr"] = "code" }
}

// validateMetrics checks the metrics address; fromEnv has read
// $BROOD_METRICS_ADDR, whose "-" turns a WithMetricsAddr off.
func (c *config) validateMetrics(name func(key, opt string) string) []error {
	if c.metrics.addr == "" {
		return nil
	}
	opt := name("metrics_addr", "WithMetricsAddr")
	_, port, err := net.SplitHostPort(c.metrics.addr)
	if p, perr := strconv.Atoi(port); err != nil || perr != nil || p < 0 || p > 65535 {
		return []error{&ConfigError{opt, strconv.Quote(c.metrics.addr), `want host:port with a numeric port, e.g. "127.0.0.1:9090"`, err}}
	}
	if _, appPort, err := net.SplitHostPort(c.addr); err == nil && appPort == port && port != "0" {
		return []error{&ConfigError{opt, strconv.Quote(c.metrics.addr), "the metrics listener needs a port of its own, not the application's; or mount metrics.Handler() on the router", nil}}
	}
	return nil
}
