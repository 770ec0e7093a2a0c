// Package middleware holds the HTTP middleware brood's workers run in front
// of the user's router. Each one is a func(http.Handler) http.Handler, or a
// constructor returning one, so it composes with chi (r.Use, chi.Chain) and
// with plain net/http alike.
//
// None of it imports chi's middleware package: that package links
// net/http/pprof and expvar into the binary (about 1 MiB of resident memory
// in each of brood's processes) and registers /debug/pprof on
// http.DefaultServeMux as a side effect. The pieces are ours because running
// as N processes behind one port asks for something chi's version does not
// do; each function's documentation says what. chi's middleware still
// composes with these in a user's own chain.
//
//	RequestID        valid incoming X-Request-Id or a cluster-unique new one
//	Recover          panic -> logged with stack and request id, 500
//	AccessLog        one slog record per request
//	RealIP           client address from proxy headers, trusted peers only
//	Timeout          503 at the deadline, context cancelled
//	BodyLimit        413 for bodies over a limit
//	Health           /healthz and /readyz, answered before the router
//	Default          the chain the framework installs
//	JSONHandler      slog's JSON lines, plus AccessLog's cheap, batched path
//
// # The default chain
//
// Default returns, outermost first:
//
//	Health -> RealIP -> RequestID -> AccessLog -> Recover -> user's router
//
// Health is outermost so probes (from every load balancer, to every worker,
// every few seconds) cost a path comparison and never flood the access log,
// and so /readyz answers even if a later middleware misbehaves.
//
// RealIP (only when trusted proxies are configured) comes before AccessLog
// because AccessLog logs r.RemoteAddr as it receives it: the client, not the
// load balancer.
//
// RequestID comes before AccessLog and Recover so both records carry the id,
// and the id is on the response even when the handler panics.
//
// AccessLog is outside Recover so a panicking request is logged once, with
// the 500 that Recover wrote; the other way round it would be logged as an
// aborted request with no status.
//
// RequestID, AccessLog and Recover composed in that order fuse into one
// handler that does what the three do, for one allocation and one deferred
// call a request. When that handler wraps a chi router, the context it
// gives the request also carries chi's routing context, so chi does not
// copy the request again to add its own: with the default chain around a
// chi router a request is copied once, as with no middleware. bench/chain
// measures what is left: about 0.9 of hello's throughput without middleware.
//
// Timeout and BodyLimit are not in the default chain: their limits belong to
// the application, and a timeout would break streaming routes. Add them to
// the routes that want them; inside Recover, so their panics are caught.
//
// # Logging
//
// AccessLog and Recover take the logger the framework builds once per
// process, already tagged with role, worker slot and pid; they add only what
// belongs to the request. The framework's JSON logs use JSONHandler, which
// writes what slog's JSONHandler writes but lets AccessLog encode its record
// itself and batch the lines into few writes: on hello, slog's formatting and
// a write(2) per request were most of what the chain cost (bench/chain).
package middleware
