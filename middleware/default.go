package middleware

import (
	"log/slog"
	"net/http"
	"net/netip"
)

// Default returns the chain the framework installs in front of the user's
// router in every worker, outermost first:
//
//	Health(ready), RealIP(trusted...), RequestID, AccessLog(logger), Recover(logger)
//
// RealIP is left out when trusted is empty. The package documentation
// explains the order. Apply it with chi's r.Use(Default(...)...) or
// chi.Chain(Default(...)...).Handler(h); users who want another chain build
// their own from the same pieces.
func Default(logger *slog.Logger, ready func() bool, trusted ...netip.Prefix) []func(http.Handler) http.Handler {
	return DefaultSplit(logger, logger, ready, trusted...)
}

// DefaultSplit is Default with the access log and the error log (Recover's
// panic records) going to different loggers: the framework sends one to
// access.log and the other to app.log when log files are on.
func DefaultSplit(access, errs *slog.Logger, ready func() bool, trusted ...netip.Prefix) []func(http.Handler) http.Handler {
	chain := make([]func(http.Handler) http.Handler, 0, 5)
	chain = append(chain, Health(ready))
	if len(trusted) > 0 {
		chain = append(chain, RealIP(trusted...))
	}
	return append(chain,
		RequestID,
		AccessLog(access),
		Recover(errs),
	)
}
