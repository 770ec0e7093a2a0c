package middleware

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
)

// Compare with: go test -run '^$' -bench . -benchmem ./middleware/
//
// The InProcess pair measures what the default chain adds to every request
// (ns and allocations); the Loopback pair puts that next to the cost of a
// real request on a keep-alive connection.

var benchHello = []byte("hello")

// benchRouter is what the chain wraps in a worker: a chi router. chi's own
// cost (a routing context, a copy of the request) is in the bare numbers
// too, and the default chain saves chi that copy (see requestIDCtx).
func benchRouter() http.Handler {
	r := chi.NewRouter()
	r.Get("/items", func(w http.ResponseWriter, r *http.Request) { w.Write(benchHello) })
	return r
}

func benchChain() http.Handler {
	// JSON to io.Discard: the formatting cost a worker really pays, without
	// the disk. JSONHandler is what the framework logs with.
	return benchChainWith(NewJSONHandler(io.Discard, nil))
}

func benchChainWith(lh slog.Handler) http.Handler {
	logger := slog.New(lh).With("role", "worker", "slot", 1, "pid", 4242)
	h := benchRouter()
	chain := Default(logger, func() bool { return true })
	for i := len(chain) - 1; i >= 0; i-- {
		h = chain[i](h)
	}
	return h
}

// benchWriter is the cheapest ResponseWriter that still lets the wrapper
// take its Flusher path, as it does with net/http's.
type benchWriter struct{ h http.Header }

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *benchWriter) WriteHeader(int)             {}
func (w *benchWriter) Flush()                      {}

func benchInProcess(b *testing.B, h http.Handler) {
	r := httptest.NewRequest("GET", "/items?id=42", nil)
	r.RemoteAddr = "192.0.2.1:54321"
	w := &benchWriter{h: make(http.Header)}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}

func BenchmarkBareInProcess(b *testing.B) {
	benchInProcess(b, benchRouter())
}

func BenchmarkDefaultInProcess(b *testing.B) {
	benchInProcess(b, benchChain())
}

func benchLoopback(b *testing.B, h http.Handler) {
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := srv.Client()
	url := srv.URL + "/items?id=42"
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// The same chain logging through slog's own JSONHandler, which a user's
// WithLogger may bring: AccessLog cannot take its shortcut.
func BenchmarkDefaultInProcessSlog(b *testing.B) {
	benchInProcess(b, benchChainWith(slog.NewJSONHandler(io.Discard, nil)))
}

func BenchmarkBareLoopback(b *testing.B) {
	benchLoopback(b, benchRouter())
}

func BenchmarkDefaultLoopback(b *testing.B) {
	benchLoopback(b, benchChain())
}
