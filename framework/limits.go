package framework

import (
	"errors"
	"fmt"
	"time"
)

// Default server limits every worker applies (see ServerLimits); slow or
// oversized request headers must not tie up a worker.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
)

// ServerLimits bounds what one client can take of a worker: every worker's
// http.Server gets them. A zero field means its default, so
// ServerLimits{IdleTimeout: time.Minute} changes that one limit.
//
// The defaults keep slow or oversized request headers (slowloris) from
// tying up a worker without cutting off slow clients' legitimate requests:
// a request body and a response are not bounded by default, because a
// deadline on them would break uploads, streaming and long polls, which the
// application can bound per route (middleware.Timeout, middleware.BodyLimit).
type ServerLimits struct {
	// ReadHeaderTimeout bounds reading a request's headers, from the
	// first byte (default 10s, at most MaxReadHeaderTimeout).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included (default:
	// none).
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response, from the end of its request's
	// headers (default: none).
	WriteTimeout time.Duration
	// IdleTimeout is how long a kept-alive connection may wait for its
	// next request (default 120s, at most MaxIdleTimeout).
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's line and headers; larger ones are
	// answered 431 (default 64 KiB, from MinHeaderBytesLimit to MaxHeaderBytesLimit).
	MaxHeaderBytes int
}

// Limits on ServerLimits; a value outside them is refused before anything
// starts.
const (
	MaxReadHeaderTimeout = 10 * time.Minute
	MaxIdleTimeout       = time.Hour
	MaxRequestTimeout    = 24 * time.Hour // ReadTimeout, WriteTimeout
	MinHeaderBytesLimit  = 1 << 10
	MaxHeaderBytesLimit  = 16 << 20
)

// WithServerLimits sets the limits every worker's server applies; see
// ServerLimits for the defaults.
func WithServerLimits(l ServerLimits) Option {
	return func(c *config) { c.limits = l }
}

// withDefaults fills the zero fields.
func (l ServerLimits) withDefaults() ServerLimits {
	if l.ReadHeaderTimeout == 0 {
		l.ReadHeaderTimeout = readHeaderTimeout
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = idleTimeout
	}
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = maxHeaderBytes
	}
	return l
}

func (l ServerLimits) validate() error {
	var errs []error
	dur := func(field string, d, max time.Duration) {
		if d < 0 || d > max {
			errs = append(errs, &ConfigError{"WithServerLimits", field + " " + d.String(),
				fmt.Sprintf("want a duration from 0s (the default) to %s", max), nil})
		}
	}
	dur("ReadHeaderTimeout", l.ReadHeaderTimeout, MaxReadHeaderTimeout)
	dur("ReadTimeout", l.ReadTimeout, MaxRequestTimeout)
	dur("WriteTimeout", l.WriteTimeout, MaxRequestTimeout)
	dur("IdleTimeout", l.IdleTimeout, MaxIdleTimeout)
	if n := l.MaxHeaderBytes; n != 0 && (n < MinHeaderBytesLimit || n > MaxHeaderBytesLimit) {
		errs = append(errs, &ConfigError{"WithServerLimits", fmt.Sprintf("MaxHeaderBytes %d", n),
			fmt.Sprintf("want 0 (the default, 64 KiB) or %d to %d bytes", MinHeaderBytesLimit, MaxHeaderBytesLimit), nil})
	}
	return errors.Join(errs...)
}
