package middleware

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
)

// Recover turns a panic in a handler into a logged error and, when the
// response has not started yet, a 500, so one bad request costs one request
// and not a worker. chi's Recoverer does the same but prints a coloured stack
// to stderr; in brood the stack belongs in the worker's structured log,
// tagged with the request id, the slot and the pid like every other record.
//
// A panic after the handler has written the header cannot become a 500. The
// response is then aborted (the connection is reset, as net/http itself does
// for an unrecovered panic) rather than ended cleanly, so the client can tell
// the body is truncated.
//
// http.ErrAbortHandler keeps its net/http meaning: it is re-panicked without
// logging, and the server aborts the response quietly.
//
// A nil logger means slog.Default().
func Recover(logger *slog.Logger) func(http.Handler) http.Handler {
	if logger == nil {
		logger = slog.Default()
	}
	return func(next http.Handler) http.Handler {
		return &recoverer{next: next, logger: logger}
	}
}

// recoverer is Recover's handler, a named type so that AccessLog can see it
// is next and fuse the two (see stack).
type recoverer struct {
	next   http.Handler
	logger *slog.Logger
}

func (h *recoverer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ww := wrapWriter(w, r)
	defer func() {
		if v := recover(); v != nil {
			if recoverPanic(h.logger, ww, r, v) {
				panic(http.ErrAbortHandler)
			}
		}
	}()
	h.next.ServeHTTP(ww, r)
}

// recoverPanic handles a panic v that reached Recover: it logs it and answers
// 500 when the response has not started. It reports whether the response
// must be aborted instead (ErrAbortHandler, or a panic after the header was
// written).
func recoverPanic(logger *slog.Logger, ww *responseWriter, r *http.Request, v any) (abort bool) {
	if v == http.ErrAbortHandler {
		return true
	}
	logPanic(logger, r, v)
	if ww.Status() != 0 {
		return true
	}
	http.Error(ww, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
	return false
}

func logPanic(logger *slog.Logger, r *http.Request, v any) {
	logger.LogAttrs(r.Context(), slog.LevelError, "panic serving request",
		slog.String("panic", fmt.Sprint(v)),
		slog.String("request_id", RequestIDFromContext(r.Context())),
		slog.String("method", r.Method),
		slog.String("path", requestURI(r)),
		slog.String("stack", string(debug.Stack())),
	)
}
