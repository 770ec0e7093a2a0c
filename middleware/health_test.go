package middleware

import (
	"io"
	"net/http"
	"sync/atomic"
	"testing"
)

func TestHealth(t *testing.T) {
	var ready atomic.Bool
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "router")
	})
	srv := newServer(t, Health(ready.Load)(next))
	nilReady := newServer(t, Health(nil)(next))

	tests := []struct {
		name       string
		srv        string
		method     string
		path       string
		ready      bool
		wantStatus int
		wantBody   string
	}{
		{"live", srv.URL, "GET", "/healthz", false, 200, "ok\n"},
		{"live head", srv.URL, "HEAD", "/healthz", false, 200, ""},
		{"ready", srv.URL, "GET", "/readyz", true, 200, "ready\n"},
		{"ready head", srv.URL, "HEAD", "/readyz", true, 200, ""},
		{"draining", srv.URL, "GET", "/readyz", false, 503, "not ready\n"},
		{"draining head", srv.URL, "HEAD", "/readyz", false, 503, ""},
		{"query ignored", srv.URL, "GET", "/readyz?verbose=1", true, 200, "ready\n"},
		{"nil ready", nilReady.URL, "GET", "/readyz", false, 200, "ready\n"},
		{"post passes through", srv.URL, "POST", "/healthz", true, 418, "router"},
		{"other path", srv.URL, "GET", "/", true, 418, "router"},
		{"sub path", srv.URL, "GET", "/healthz/deep", true, 418, "router"},
		{"prefix lookalike", srv.URL, "GET", "/readyzz", true, 418, "router"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready.Store(tt.ready)
			resp, body, err := do(t, mustRequest(t, tt.method, tt.srv+tt.path, nil))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus || body != tt.wantBody {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			if tt.wantStatus != 418 && resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("probe answer cacheable: Cache-Control %q", resp.Header.Get("Cache-Control"))
			}
		})
	}
}

// A worker that starts draining must fail /readyz on the next probe, and
// /healthz must keep passing so it is not restarted while it drains.
func TestHealthFollowsReady(t *testing.T) {
	var ready atomic.Bool
	srv := newServer(t, Health(ready.Load)(http.NotFoundHandler()))
	status := func(path string) int {
		resp, _, err := do(t, mustRequest(t, "GET", srv.URL+path, nil))
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	for _, step := range []struct {
		ready           bool
		readyz, healthz int
	}{
		{false, 503, 200}, // starting
		{true, 200, 200},  // serving
		{false, 503, 200}, // draining
	} {
		ready.Store(step.ready)
		if got := status("/readyz"); got != step.readyz {
			t.Fatalf("ready()=%v: /readyz %d, want %d", step.ready, got, step.readyz)
		}
		if got := status("/healthz"); got != step.healthz {
			t.Fatalf("ready()=%v: /healthz %d, want %d", step.ready, got, step.healthz)
		}
	}
}
