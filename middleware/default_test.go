package middleware

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
)

func TestDefault(t *testing.T) {
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	mux := http.NewServeMux()
	mux.HandleFunc("/panic", panicBeforeWrite)
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })

	tests := []struct {
		name       string
		trusted    []netip.Prefix
		path       string
		xff        string
		wantStatus int
		wantAccess int    // access records
		wantPanic  int    // panic records
		wantRemote string // "" to skip
	}{
		{"ok", nil, "/hello", "", 200, 1, 0, ""},
		// Recover inside AccessLog: the access record has the 500.
		{"panic", nil, "/panic", "", 500, 1, 1, ""},
		// Health outermost: probes stay out of the access log.
		{"probe", nil, "/healthz", "", 200, 0, 0, ""},
		{"not ready", nil, "/readyz", "", 503, 0, 0, ""},
		// RealIP outside AccessLog: the client is logged, not the proxy.
		{"behind proxy", loopback, "/hello", "203.0.113.7", 200, 1, 0, "203.0.113.7"},
		// Without trusted proxies RealIP is not installed at all.
		{"forged xff", nil, "/hello", "203.0.113.7", 200, 1, 0, "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logger, sink := newTestLogger()
			var h http.Handler = mux
			chain := Default(logger, func() bool { return false }, tt.trusted...)
			for i := len(chain) - 1; i >= 0; i-- {
				h = chain[i](h)
			}
			srv := newServer(t, h)
			req := mustRequest(t, "GET", srv.URL+tt.path, nil)
			if tt.xff != "" {
				req.Header.Set("X-Forwarded-For", tt.xff)
			}
			resp, _, err := do(t, req)
			if err != nil {
				t.Fatal(err)
			}
			srv.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("got status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			access := sink.recordsWithMsg(t, "request")
			panics := sink.recordsWithMsg(t, "panic serving request")
			if len(access) != tt.wantAccess || len(panics) != tt.wantPanic {
				t.Fatalf("got %d access and %d panic records, want %d and %d: %v",
					len(access), len(panics), tt.wantAccess, tt.wantPanic, sink.records(t))
			}
			id := resp.Header.Get(RequestIDHeader)
			for _, rec := range append(access, panics...) {
				if id == "" || rec["request_id"] != id {
					t.Errorf("record has request_id %v, response has %q", rec["request_id"], id)
				}
			}
			if len(access) == 1 {
				if got := access[0]["status"]; got != float64(tt.wantStatus) {
					t.Errorf("access record has status %v, want %d", got, tt.wantStatus)
				}
				if tt.wantRemote != "" {
					remote, _ := access[0]["remote"].(string)
					host, _, err := net.SplitHostPort(remote)
					if err != nil {
						host = remote
					}
					if host != tt.wantRemote {
						t.Errorf("access record has remote %q, want %s", remote, tt.wantRemote)
					}
				}
			}
		})
	}
}
