package middleware

import (
	"net/http"
)

// Health answers the probes of a load balancer or orchestrator before the
// user's router sees the request:
//
//   - GET or HEAD /healthz: 200 "ok" while the worker process can serve at
//     all (liveness; a failing liveness probe gets the process restarted).
//   - GET or HEAD /readyz: 200 "ready" while ready() is true, else 503
//     "not ready" (readiness; a failing one takes the instance out of
//     rotation without restarting it).
//
// Every other request, other methods on these paths included, goes to next.
// The framework passes a ready that is true only while the cluster is ready
// and this worker is not draining, so during a rolling reload or a graceful
// stop the draining worker fails /readyz while its siblings, which share the
// port, keep passing it. A nil ready means ready whenever alive.
//
// chi's Heartbeat answers a single path; brood needs liveness and readiness
// to differ while a worker drains.
func Health(ready func() bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				next.ServeHTTP(w, r)
				return
			}
			switch r.URL.Path {
			case "/healthz":
				probeReply(w, r, http.StatusOK, "ok\n")
			case "/readyz":
				if ready == nil || ready() {
					probeReply(w, r, http.StatusOK, "ready\n")
				} else {
					probeReply(w, r, http.StatusServiceUnavailable, "not ready\n")
				}
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}

func probeReply(w http.ResponseWriter, r *http.Request, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	// A cached "ready" would outlive the worker's drain.
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(body))
	}
}
