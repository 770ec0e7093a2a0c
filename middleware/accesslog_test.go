package middleware

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestAccessLog(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		target  string
		body    string
		handler http.HandlerFunc
		status  int
		bytes   int
		level   string
		minDur  time.Duration
	}{
		{
			name: "writes nothing", method: "GET", target: "/empty",
			handler: func(w http.ResponseWriter, r *http.Request) {},
			status:  200, bytes: 0, level: "INFO",
		},
		{
			name: "status and body", method: "POST", target: "/items?x=1&y=%20z", body: "payload",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusCreated)
				io.WriteString(w, "hello")
			},
			status: 201, bytes: 5, level: "INFO",
		},
		{
			name: "write without header", method: "GET", target: "/w",
			handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "abc") },
			status:  200, bytes: 3, level: "INFO",
		},
		{
			name: "server error", method: "GET", target: "/fail",
			handler: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "nope", http.StatusBadGateway) },
			status:  502, bytes: len("nope\n"), level: "ERROR",
		},
		{
			name: "slow", method: "GET", target: "/slow",
			handler: func(w http.ResponseWriter, r *http.Request) { time.Sleep(30 * time.Millisecond) },
			status:  200, level: "INFO", minDur: 30 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logger, sink := newTestLogger()
			// The framework's logger already carries slot and pid.
			logger = logger.With("slot", 3, "pid", 4242)
			srv := newServer(t, RequestID(AccessLog(logger)(tt.handler)))
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			resp, _, err := do(t, mustRequest(t, tt.method, srv.URL+tt.target, body))
			if err != nil {
				t.Fatal(err)
			}
			srv.Close()
			recs := sink.records(t)
			if len(recs) != 1 {
				t.Fatalf("got %d records, want exactly 1: %v", len(recs), recs)
			}
			rec := recs[0]
			want := map[string]any{
				"msg":        "request",
				"level":      tt.level,
				"method":     tt.method,
				"path":       tt.target,
				"status":     float64(tt.status),
				"bytes":      float64(tt.bytes),
				"request_id": resp.Header.Get(RequestIDHeader),
				"slot":       float64(3),
				"pid":        float64(4242),
			}
			for k, v := range want {
				if rec[k] != v {
					t.Errorf("%s: got %v, want %v", k, rec[k], v)
				}
			}
			if remote, _ := rec["remote"].(string); !strings.HasPrefix(remote, "127.0.0.1:") {
				t.Errorf("remote: got %q, want 127.0.0.1:port", remote)
			}
			dur, ok := rec["duration"].(float64) // nanoseconds in slog's JSON
			if !ok || dur <= 0 || time.Duration(dur) < tt.minDur {
				t.Errorf("duration: got %v, want > 0 and >= %v", rec["duration"], tt.minDur)
			}
			if _, ok := rec["aborted"]; ok {
				t.Errorf("completed request logged with aborted=%v", rec["aborted"])
			}
		})
	}
}

func TestAccessLogOneRecordPerRequest(t *testing.T) {
	logger, sink := newTestLogger()
	srv := newServer(t, AccessLog(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "x")
	})))
	const n = 25
	for range n {
		if _, _, err := do(t, mustRequest(t, "GET", srv.URL, nil)); err != nil {
			t.Fatal(err)
		}
	}
	srv.Close()
	if got := len(sink.records(t)); got != n {
		t.Fatalf("got %d records for %d requests", got, n)
	}
}

// A request that dies with http.ErrAbortHandler still gets its one record,
// and the abort still reaches net/http.
func TestAccessLogAborted(t *testing.T) {
	logger, sink := newTestLogger()
	srv := newServer(t, AccessLog(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})))
	_, _, err := do(t, mustRequest(t, "GET", srv.URL, nil))
	if err == nil {
		t.Fatal("got a complete response, want it aborted")
	}
	srv.Close()
	recs := sink.records(t)
	if len(recs) != 1 {
		t.Fatalf("got %d records, want 1: %v", len(recs), recs)
	}
	if recs[0]["aborted"] != true || recs[0]["status"] != float64(200) {
		t.Fatalf("got %v, want aborted=true status=200", recs[0])
	}
}

// The wrapped writer must keep what streaming and WebSocket handlers rely
// on: Flusher, Hijacker, and Unwrap for http.ResponseController.
func TestAccessLogKeepsWriterInterfaces(t *testing.T) {
	logger, sink := newTestLogger()
	released := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("SetWriteDeadline through the wrapper: %v", err)
		}
		io.WriteString(w, "first\n")
		if err := rc.Flush(); err != nil {
			t.Errorf("Flush through the wrapper: %v", err)
		}
		// The client must see the first line while the handler still runs.
		select {
		case <-released:
		case <-time.After(3 * time.Second):
			t.Error("the client did not get the flushed line while the handler ran")
		}
	})
	mux.HandleFunc("/hijack", func(w http.ResponseWriter, r *http.Request) {
		conn, bufrw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("Hijack through the wrapper: %v", err)
			return
		}
		defer conn.Close()
		bufrw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nhijacked")
		bufrw.Flush()
	})
	srv := newServer(t, AccessLog(logger)(mux))

	t.Run("flush", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/stream")
		if err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		close(released)
		resp.Body.Close()
		if err != nil || line != "first\n" {
			t.Fatalf("got %q, %v before the handler returned; want the flushed line", line, err)
		}
	})
	t.Run("hijack", func(t *testing.T) {
		_, body, err := do(t, mustRequest(t, "GET", srv.URL+"/hijack", nil))
		if err != nil || body != "hijacked" {
			t.Fatalf("got %q, %v; want the hijacked response", body, err)
		}
	})
	srv.Close()
	if got := len(sink.waitRecords(t, 2)); got != 2 {
		t.Fatalf("got %d records, want 2", got)
	}
}

// A hijacked connection has no status net/http wrote: an upgrade is logged
// as 101, anything else as 0, and both with hijacked=true, never as a 200.
func TestAccessLogHijacked(t *testing.T) {
	hijack := func(reply string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			conn, bufrw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("Hijack: %v", err)
				return
			}
			defer conn.Close()
			bufrw.WriteString(reply)
			bufrw.Flush()
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", hijack("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"))
	mux.Handle("/raw", hijack("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"))
	for _, tc := range []struct {
		name  string
		chain func(*slog.Logger, http.Handler) http.Handler
	}{
		{"AccessLog", func(l *slog.Logger, h http.Handler) http.Handler { return AccessLog(l)(h) }},
		{"fused stack", func(l *slog.Logger, h http.Handler) http.Handler { return RequestID(AccessLog(l)(Recover(l)(h))) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logger, sink := newTestLogger()
			srv := newServer(t, tc.chain(logger, mux))
			for _, rq := range []struct {
				path, upgrade string
				status        float64
			}{{"/ws", "websocket", 101}, {"/raw", "", 0}} {
				conn, err := net.Dial("tcp", srv.Listener.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				req := "GET " + rq.path + " HTTP/1.1\r\nHost: x\r\n"
				if rq.upgrade != "" {
					req += "Connection: Upgrade\r\nUpgrade: " + rq.upgrade + "\r\n"
				}
				conn.Write([]byte(req + "\r\n"))
				io.Copy(io.Discard, conn) // the handler closes it
				conn.Close()
				recs := sink.waitRecords(t, 1)
				if len(recs) != 1 {
					t.Fatalf("%s: got %d records, want 1", rq.path, len(recs))
				}
				if recs[0]["status"] != rq.status || recs[0]["hijacked"] != true {
					t.Errorf("%s: logged status %v hijacked %v; want %v and true", rq.path, recs[0]["status"], recs[0]["hijacked"], rq.status)
				}
				sink.clear()
			}
		})
	}
}
