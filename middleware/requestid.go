package middleware

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/go-chi/chi/v5"
)

// RequestIDHeader is the header RequestID reads from the client and writes
// on the response.
const RequestIDHeader = "X-Request-Id"

// MaxRequestIDLen bounds an incoming request id. Longer ids are replaced, so
// a client cannot make every log line it causes arbitrarily large.
const MaxRequestIDLen = 128

// idPrefix is random per process: workers are re-executed from one binary
// on one host and reuse dead workers' pids, so nothing else tells them
// apart. 80 random bits keep two processes from ever sharing a prefix in
// practice. It is drawn on first use so the master and the agent, which
// serve no requests, never pay for it.
var idPrefix = sync.OnceValue(func() string {
	var b [10]byte
	rand.Read(b[:]) // never fails since Go 1.24
	enc := base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)
	return enc.EncodeToString(b[:]) + "-"
})

var idCounter atomic.Uint64

// RequestID gives every request an id, so that the access log, a panic's log
// record and the client's bug report can be matched across the N workers'
// logs.
//
// An incoming X-Request-Id (from a proxy or a calling service) is kept when it
// is 1..MaxRequestIDLen characters of [A-Za-z0-9._:-]; anything else is
// replaced, so a client cannot inject quotes, markup or megabytes into
// the logs. A new id is a per-process random prefix plus a counter, unique
// across the cluster without coordination and cheap enough for every request.
//
// chi's RequestID is not used because it keeps any incoming id, however
// long or strange, and formats new ids with fmt.Sprintf on every request.
// Read the id with RequestIDFromContext (chi's GetReqID does not see it:
// importing chi's middleware package would link net/http/pprof into every
// process; see responseWriter). It is echoed in the X-Request-Id response header.
func RequestID(next http.Handler) http.Handler {
	if s, ok := next.(*stack); ok && !s.withID {
		fused := *s
		fused.withID = true
		fused.prefix = idPrefix()
		fused.mux, _ = fused.next.(*chi.Mux)
		return &fused
	}
	mux, _ := next.(*chi.Mux)
	return &requestIDHandler{next: next, prefix: idPrefix(), mux: mux}
}

// requestIDHandler is RequestID's handler when it is not fused with
// AccessLog and Recover (see stack).
type requestIDHandler struct {
	next   http.Handler
	prefix string
	mux    *chi.Mux // next, when it is a chi router
}

func (h *requestIDHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := &requestIDCtx{}
	r = ctx.start(w, r, h.prefix, h.mux)
	h.next.ServeHTTP(w, r)
	ctx.done()
}

// requestIDCtx carries the request id. It is context.WithValue's job done
// in one allocation instead of three (the context, the id boxed in an
// interface, the header's []string), which RequestID does on every request.
//
// When the handler RequestID wraps is a chi router, it also carries that
// router's routing context (chi.RouteCtxKey). A chi.Mux that finds one
// already in the request's context uses it instead of copying the request
// once more (r.WithContext) to add its own, as it does for a mounted
// subrouter: with the default chain around a chi router, a request is then
// copied once, as it is with no middleware at all.
type requestIDCtx struct {
	context.Context
	id     string
	header [1]string    // the X-Request-Id value slice
	route  *chi.Context // from routeContexts, or nil
}

// routeContexts recycles chi's routing contexts, as chi.Mux itself does,
// so that their slices are reused from request to request.
var routeContexts = sync.Pool{New: func() any { return chi.NewRouteContext() }}

// start gives r its id: the valid incoming one or a new one, in c and in
// the response header. It returns r with c as its context.
func (c *requestIDCtx) start(w http.ResponseWriter, r *http.Request, prefix string, mux *chi.Mux) *http.Request {
	var id string
	// Indexed, not Get: the key is canonical already, and Get would check.
	if v := r.Header[RequestIDHeader]; len(v) > 0 {
		id = v[0]
	}
	if !validRequestID(id) {
		id = newRequestID(prefix)
	}
	c.Context, c.id, c.header[0] = r.Context(), id, id
	w.Header()[RequestIDHeader] = c.header[:]
	if mux != nil && chi.RouteContext(c.Context) == nil {
		rctx := routeContexts.Get().(*chi.Context)
		rctx.Reset()
		rctx.Routes = mux
		c.route = rctx
	}
	return r.WithContext(c)
}

// done returns the routing context to the pool once the handler has
// returned (not after a panic, as chi.Mux does not: a goroutine the
// handler left running may still be using it, just as with chi alone).
func (c *requestIDCtx) done() {
	if c.route != nil {
		routeContexts.Put(c.route)
		c.route = nil
	}
}

// requestIDKey is the context key under which the id can also be found
// with ctx.Value, for code that only has the context interface.
type requestIDKey struct{}

func (c *requestIDCtx) Value(key any) any {
	switch key {
	case requestIDKey{}:
		return c.id
	case chi.RouteCtxKey:
		if c.route != nil {
			return c.route
		}
	}
	return c.Context.Value(key)
}

// RequestIDFromContext returns the request id RequestID stored in ctx, or ""
// when RequestID did not run.
func RequestIDFromContext(ctx context.Context) string {
	if c, ok := ctx.(*requestIDCtx); ok {
		return c.id // AccessLog and Recover: no lookup, no boxing
	}
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

func newRequestID(prefix string) string {
	// One allocation: the string itself is built in a stack buffer.
	var buf [64]byte
	b := append(buf[:0], prefix...)
	b = strconv.AppendUint(b, idCounter.Add(1), 10)
	return string(b)
}

func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > MaxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}
