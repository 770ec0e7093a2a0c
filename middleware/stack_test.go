package middleware

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/go-chi/chi/v5"
)

// passThrough is a middleware that does nothing; put between two of ours it
// keeps them from fusing.
func passThrough(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { next.ServeHTTP(w, r) })
}

// TestStackMatchesChain serves the same requests through
// RequestID(AccessLog(Recover(h))), fused into one stack, and through the
// same three kept apart, and requires the same responses and log records.
func TestStackMatchesChain(t *testing.T) {
	mux := chi.NewRouter()
	mux.Get("/hello", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	mux.Get("/items/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-Id", RequestIDFromContext(r.Context()))
		fmt.Fprintf(w, "%s %s", chi.URLParam(r, "id"), chi.RouteContext(r.Context()).RoutePattern())
	})
	mux.Get("/panic", panicBeforeWrite)
	mux.Get("/panic-after-header", panicAfterWriteHeader)
	mux.Get("/abort", panicAbort)
	mux.Get("/empty", func(w http.ResponseWriter, r *http.Request) {})
	mux.Post("/teapot", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })

	requests := []struct {
		method, path, id string
	}{
		{"GET", "/hello", ""},
		{"GET", "/hello", "from-proxy.1"},
		{"GET", "/hello", "bad id"},
		{"GET", "/items/42?x=1", ""},
		{"GET", "/panic", ""},
		{"GET", "/panic-after-header", ""},
		{"GET", "/abort", ""},
		{"GET", "/empty", ""},
		{"POST", "/teapot", ""},
		{"GET", "/nowhere", ""},
		{"DELETE", "/hello", ""},
	}
	type outcome struct {
		status  int
		body    string
		err     bool
		access  string
		panics  int
		idShape bool // the response's id equals the logged one, and is valid
	}
	serve := func(t *testing.T, fused bool) []outcome {
		var got []outcome
		for _, rq := range requests {
			logger, sink := newTestLogger()
			var h http.Handler
			if fused {
				h = RequestID(AccessLog(logger)(Recover(logger)(mux)))
				if _, ok := h.(*stack); !ok {
					t.Fatalf("RequestID(AccessLog(Recover)) is a %T, not fused", h)
				}
			} else {
				h = RequestID(passThrough(AccessLog(logger)(passThrough(Recover(logger)(mux)))))
			}
			srv := newServer(t, h)
			req := mustRequest(t, rq.method, srv.URL+rq.path, nil)
			if rq.id != "" {
				req.Header.Set(RequestIDHeader, rq.id)
			}
			resp, body, err := do(t, req)
			o := outcome{err: err != nil}
			if resp != nil {
				o.status, o.body = resp.StatusCode, body
			}
			srv.Close() // waits for the handler, so its records are in
			access := sink.recordsWithMsg(t, "request")
			o.panics = len(sink.recordsWithMsg(t, "panic serving request"))
			if len(access) != 1 {
				t.Fatalf("%s %s: got %d access records, want 1", rq.method, rq.path, len(access))
			}
			a := access[0]
			id, _ := a["request_id"].(string)
			o.idShape = validRequestID(id) && (resp == nil || resp.Header.Get(RequestIDHeader) == id)
			if validRequestID(rq.id) {
				o.idShape = o.idShape && id == rq.id
			}
			if resp != nil {
				if seen := resp.Header.Get("X-Seen-Id"); seen != "" && seen != id {
					t.Errorf("%s %s: the handler saw request id %q, the log has %q", rq.method, rq.path, seen, id)
				}
			}
			o.access = fmt.Sprintf("%v %v %v %v %v %v", a["level"], a["method"], a["path"], a["status"], a["bytes"], a["aborted"])
			got = append(got, o)
		}
		return got
	}
	chain, fused := serve(t, false), serve(t, true)
	for i, rq := range requests {
		if chain[i] != fused[i] {
			t.Errorf("%s %s: kept apart %+v, fused %+v", rq.method, rq.path, chain[i], fused[i])
		}
		if !fused[i].idShape {
			t.Errorf("%s %s: the request id is missing, invalid or differs between response and log", rq.method, rq.path)
		}
	}
	if got := fused[3].body; got != "42 /items/{id}" {
		t.Errorf("GET /items/42 answered %q, want chi's URL param and route pattern", got)
	}
}

// With the default chain around a chi router, chi finds its routing
// context already in the request's and does not copy the request again:
// the handler's context is RequestID's own.
func TestRequestIDCarriesChiRouteContext(t *testing.T) {
	logger, _ := newTestLogger()
	var ctxType string
	mux := chi.NewRouter()
	mux.Get("/users/{name}", func(w http.ResponseWriter, r *http.Request) {
		ctxType = fmt.Sprintf("%T", r.Context())
		io.WriteString(w, chi.URLParam(r, "name"))
	})
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{
		{"RequestID alone", RequestID(mux)},
		{"fused stack", RequestID(AccessLog(logger)(Recover(logger)(mux)))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, tc.h)
			for range 3 { // the second and third reuse pooled routing contexts
				ctxType = ""
				resp, body, err := do(t, mustRequest(t, "GET", srv.URL+"/users/ada", nil))
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != 200 || body != "ada" {
					t.Fatalf("got %d %q, want 200 \"ada\"", resp.StatusCode, body)
				}
				if ctxType != "*middleware.requestIDCtx" {
					t.Errorf("handler's context is %s, want *middleware.requestIDCtx (chi copied the request)", ctxType)
				}
			}
		})
	}
}

// A chi router mounted under another keeps routing on what the parent left
// of the path: RequestID around it must not hand it a fresh routing context.
func TestRequestIDAroundMountedRouter(t *testing.T) {
	sub := chi.NewRouter()
	sub.Get("/{name}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, chi.URLParam(r, "name")+" "+RequestIDFromContext(r.Context()))
	})
	root := chi.NewRouter()
	logger, _ := newTestLogger()
	root.Mount("/api", RequestID(AccessLog(logger)(Recover(logger)(sub))))
	srv := newServer(t, root)
	req := mustRequest(t, "GET", srv.URL+"/api/ada", nil)
	req.Header.Set(RequestIDHeader, "r-1")
	resp, body, err := do(t, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || body != "ada r-1" {
		t.Fatalf("got %d %q, want 200 \"ada r-1\"", resp.StatusCode, body)
	}
}

// The routing context goes back to the pool only when the handler returned;
// a request's URL params never leak into the next one.
func TestRouteContextNotShared(t *testing.T) {
	mux := chi.NewRouter()
	mux.Get("/a/{x}", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, chi.URLParam(r, "x")) })
	mux.Get("/b", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, fmt.Sprint(len(chi.RouteContext(r.Context()).URLParams.Keys)))
	})
	h := RequestID(mux)
	ctx := context.Background()
	for i := range 50 {
		for _, tc := range []struct{ path, want string }{{fmt.Sprintf("/a/%d", i), fmt.Sprint(i)}, {"/b", "0"}} {
			req, _ := http.NewRequestWithContext(ctx, "GET", tc.path, nil)
			w := &benchWriter{h: make(http.Header)}
			rec := &recordingWriter{benchWriter: w}
			h.ServeHTTP(rec, req)
			if rec.body != tc.want {
				t.Fatalf("GET %s answered %q, want %q", tc.path, rec.body, tc.want)
			}
		}
	}
}

type recordingWriter struct {
	*benchWriter
	body string
}

func (w *recordingWriter) Write(b []byte) (int, error) { w.body += string(b); return len(b), nil }
