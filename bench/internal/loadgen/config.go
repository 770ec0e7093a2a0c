package loadgen

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"time"
)

// Limits on a run; a Config outside them is refused.
const (
	MaxConns    = 10000
	MaxDuration = 10 * time.Minute
	MaxRequests = 1 << 40
)

// Config describes one run. The zero value of every field but URL is a
// usable default.
type Config struct {
	// URL is the http:// URL every request GETs. Its host must be a
	// loopback address.
	URL string
	// Conns is the number of concurrent connections (default 50).
	Conns int
	// Duration bounds the run (default 10s, at most MaxDuration).
	Duration time.Duration
	// Requests, when above zero, ends the run after that many requests
	// have been sent, if Duration has not ended it first.
	Requests int64
	// Fresh opens a new connection for every request (sending
	// "Connection: close") instead of keeping connections alive.
	Fresh bool
	// Timeout bounds each request, connecting included (default 5s).
	Timeout time.Duration
	// Header, if set, gives the extra header lines (each ending in
	// "\r\n") of connection conn's requests, e.g. a session cookie per
	// connection. It is called once per connection, before the load.
	Header func(conn int) string
}

// ErrNotLoopback is returned for a target that is not on this machine.
var ErrNotLoopback = errors.New("target is not a loopback address")

func (c Config) withDefaults() Config {
	if c.Conns == 0 {
		c.Conns = 50
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.Conns < 1 || c.Conns > MaxConns {
		errs = append(errs, fmt.Errorf("connections %d: want 1 to %d", c.Conns, MaxConns))
	}
	if c.Duration <= 0 || c.Duration > MaxDuration {
		errs = append(errs, fmt.Errorf("duration %s: want above 0s and at most %s", c.Duration, MaxDuration))
	}
	if c.Requests < 0 || c.Requests > MaxRequests {
		errs = append(errs, fmt.Errorf("requests %d: want 0 (no limit but the duration) to %d", c.Requests, int64(MaxRequests)))
	}
	if c.Timeout <= 0 || c.Timeout > time.Minute {
		errs = append(errs, fmt.Errorf("timeout %s: want above 0s and at most 1m", c.Timeout))
	}
	return errors.Join(errs...)
}

// target is a parsed, checked URL.
type target struct {
	addr string // host:port to dial, host an IP literal
	host string // Host header
	path string // request target, with the query
}

// parseTarget accepts http:// URLs whose host is a loopback IP literal or
// "localhost". Names other than localhost are refused rather than resolved,
// so a typo cannot send load through DNS to another machine.
func parseTarget(raw string) (target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return target{}, fmt.Errorf("parse URL %q: %w", raw, err)
	}
	if u.Scheme != "http" {
		return target{}, fmt.Errorf("URL %q: only http:// is supported", raw)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
	}
	ip := "127.0.0.1"
	if host != "localhost" {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Unmap().IsLoopback() || a.Zone() != "" {
			return target{}, fmt.Errorf("%w: %q; only 127.0.0.0/8, ::1 and localhost may be load-tested from here", ErrNotLoopback, host)
		}
		ip = a.Unmap().String()
	}
	path := u.RequestURI()
	return target{addr: net.JoinHostPort(ip, port), host: u.Host, path: path}, nil
}

// CheckURL reports whether raw is a URL Run would accept as a target.
func CheckURL(raw string) error {
	_, err := parseTarget(raw)
	return err
}
