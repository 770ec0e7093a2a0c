package middleware

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
)

// stack is AccessLog(Recover(next)), or RequestID(AccessLog(Recover(next)))
// when withID is set, served by one handler. The pieces fuse when they are
// composed in that order, as in the default chain: AccessLog recognizes
// Recover's handler as its next, RequestID recognizes AccessLog's fused one.
// The result behaves exactly as the composition does (TestStackMatchesChain
// holds the two to it) for less: one allocation holds the response writer
// and the request's context, one deferred call logs and recovers, and the
// request passes through one handler instead of three. On hello, a request
// costs the worker about 15us; the default chain costs a few, so every
// allocation and call in it shows in throughput (bench/chain).
type stack struct {
	next   http.Handler
	log    accessLogger
	errs   *slog.Logger // Recover's logger
	withID bool
	prefix string   // request id prefix, when withID
	mux    *chi.Mux // next, when it is a chi router and withID
}

// requestState is what stack keeps for one request, in one allocation.
type requestState struct {
	w         responseWriter
	ctx       requestIDCtx
	completed bool
}

func (s *stack) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := &requestState{}
	ww, ok := w.(*responseWriter) // an outer middleware of ours wrapped it
	if !ok {
		st.w.ResponseWriter = w
		ww = &st.w
	}
	if s.withID {
		r = st.ctx.start(w, r, s.prefix, s.mux)
	}
	start := time.Now()
	defer func() { s.finish(st, ww, r, start, recover()) }()
	s.next.ServeHTTP(ww, r)
	st.completed = true
}

// finish does, after the handler returned or panicked with v, what
// Recover's and then AccessLog's deferred calls do.
func (s *stack) finish(st *requestState, ww *responseWriter, r *http.Request, start time.Time, v any) {
	if v != nil {
		if recoverPanic(s.errs, ww, r, v) {
			// The response is aborted: log it as such, then let net/http
			// abort it quietly, as Recover does.
			s.log.write(ww, r, start, false)
			panic(http.ErrAbortHandler)
		}
		st.completed = true // Recover answered 500
	}
	s.log.write(ww, r, start, st.completed)
	st.ctx.done()
}
