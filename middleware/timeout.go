package middleware

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

const timeoutBody = "request timed out\n"

// Timeout gives a request d to produce its response. At the deadline the
// request's context is cancelled with cause http.ErrHandlerTimeout and, if
// the handler has not started its response, the client gets a 503 with a
// short body right away, with "Connection: close" so it does not queue its
// next request behind the handler.
//
// chi's Timeout only writes its status after the handler returns, which a
// handler that ignores its context never does; http.TimeoutHandler answers
// on time but buffers the whole response (no streaming) and returns while
// the handler goroutine still runs, so http.Server.Shutdown can report a
// draining worker idle and let the process exit under a handler. This one
// runs the handler on the server's goroutine and writes the 503 from a timer:
// ServeHTTP returns only when the handler has, responses stream, and a
// handler's panic keeps its own stack.
//
// After the deadline the handler's writes fail with http.ErrHandlerTimeout.
// If the handler had already started its response and then had a write
// refused, the response is aborted (as for a panic) so the client sees it
// truncated instead of complete. The handler gets its own header map until
// it writes, so the 503 never carries headers it set. Flush works beneath
// Timeout; Hijack and the rest of http.ResponseController do not, because
// they would bypass the lock that keeps the handler and the timer from
// writing at once; do not put long-lived streams or WebSockets under it.
//
// Timeout panics if d is not positive.
func Timeout(d time.Duration) func(http.Handler) http.Handler {
	if d <= 0 {
		panic(fmt.Sprintf("middleware.Timeout: duration must be positive, got %v", d))
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeoutCause(r.Context(), d, http.ErrHandlerTimeout)
			defer cancel()
			tw := &timeoutWriter{w: w, h: w.Header().Clone()}
			stop := context.AfterFunc(ctx, func() {
				if context.Cause(ctx) == http.ErrHandlerTimeout {
					tw.timeout()
				}
			})
			returned := false
			defer func() {
				stop()
				// If the timer is already writing the 503, the lock waits
				// for it; if it has yet to start, finished keeps it off w,
				// which must not be touched after we return, panic or not.
				tw.mu.Lock()
				// A handler that returned on the cancellation can beat the
				// timer goroutine here; the 503 is then ours to write.
				if returned && !tw.timedOut && context.Cause(ctx) == http.ErrHandlerTimeout {
					tw.expire()
				}
				tw.finished = true
				abort := returned && tw.refused && tw.committed
				tw.mu.Unlock()
				if abort {
					panic(http.ErrAbortHandler)
				}
			}()
			next.ServeHTTP(tw, r.WithContext(ctx))
			returned = true
		})
	}
}

// timeoutWriter serializes the handler's writes and the timer's 503.
type timeoutWriter struct {
	mu        sync.Mutex
	w         http.ResponseWriter
	h         http.Header // the handler's headers until committed
	committed bool        // the handler's status line went to w
	timedOut  bool
	refused   bool // a handler write was refused after timing out
	finished  bool // ServeHTTP returned; w is off limits
}

func (tw *timeoutWriter) Header() http.Header {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if tw.committed {
		// Trailers are set after the body; they must reach w's map.
		return tw.w.Header()
	}
	return tw.h
}

func (tw *timeoutWriter) WriteHeader(code int) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if tw.timedOut || tw.committed {
		return
	}
	tw.commit(code)
}

func (tw *timeoutWriter) Write(b []byte) (int, error) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if tw.timedOut {
		tw.refused = true
		return 0, http.ErrHandlerTimeout
	}
	if !tw.committed {
		tw.commit(http.StatusOK)
	}
	return tw.w.Write(b)
}

func (tw *timeoutWriter) Flush() { _ = tw.FlushError() }

// FlushError is what http.ResponseController.Flush calls.
func (tw *timeoutWriter) FlushError() error {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if tw.timedOut {
		return http.ErrHandlerTimeout
	}
	if !tw.committed {
		tw.commit(http.StatusOK)
	}
	return http.NewResponseController(tw.w).Flush()
}

// commit must be called with mu held.
func (tw *timeoutWriter) commit(code int) {
	dst := tw.w.Header()
	clear(dst)
	for k, v := range tw.h {
		dst[k] = v
	}
	tw.w.WriteHeader(code)
	// 1xx responses are not the final status line.
	if code >= 200 || code == http.StatusSwitchingProtocols {
		tw.committed = true
	}
}

// timeout runs on the context's timer goroutine.
func (tw *timeoutWriter) timeout() {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if !tw.finished && !tw.timedOut {
		tw.expire()
	}
}

// expire must be called with mu held.
func (tw *timeoutWriter) expire() {
	tw.timedOut = true
	if tw.committed {
		return
	}
	h := tw.w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(timeoutBody)))
	h.Set("Connection", "close")
	tw.w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = tw.w.Write([]byte(timeoutBody))
	// The handler may run on for a long time; the client should not wait.
	_ = http.NewResponseController(tw.w).Flush()
}
