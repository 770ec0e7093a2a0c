package middleware

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const testDeadline = 100 * time.Millisecond

func TestTimeout(t *testing.T) {
	type result struct {
		writeErr error // the handler's write after the deadline
		cause    error // context.Cause when the handler looked
	}
	tests := []struct {
		name       string
		handler    func(w http.ResponseWriter, r *http.Request, res *result)
		wantStatus int    // 0: the response must be aborted
		wantBody   string // checked when wantStatus != 0
		wantFast   bool   // answered near the deadline, not when the handler returns
		wantErr    error
	}{
		{
			name: "fast handler untouched",
			handler: func(w http.ResponseWriter, r *http.Request, res *result) {
				w.Header().Set("X-Handler", "yes")
				io.WriteString(w, "done")
			},
			wantStatus: 200, wantBody: "done",
		},
		{
			name: "handler honours context",
			handler: func(w http.ResponseWriter, r *http.Request, res *result) {
				<-r.Context().Done()
				res.cause = context.Cause(r.Context())
			},
			wantStatus: 503, wantBody: timeoutBody, wantFast: true,
		},
		{
			name: "handler ignores context",
			handler: func(w http.ResponseWriter, r *http.Request, res *result) {
				w.Header().Set("X-Handler", "yes") // must not leak into the 503
				time.Sleep(6 * testDeadline)
				res.cause = context.Cause(r.Context())
				_, res.writeErr = io.WriteString(w, "too late")
			},
			wantStatus: 503, wantBody: timeoutBody, wantFast: true, wantErr: http.ErrHandlerTimeout,
		},
		{
			name: "started response then refused",
			handler: func(w http.ResponseWriter, r *http.Request, res *result) {
				io.WriteString(w, "partial")
				w.(http.Flusher).Flush()
				time.Sleep(3 * testDeadline)
				res.cause = context.Cause(r.Context())
				_, res.writeErr = io.WriteString(w, "rest")
			},
			wantStatus: 0, wantErr: http.ErrHandlerTimeout,
		},
		{
			name: "complete response then slow return",
			handler: func(w http.ResponseWriter, r *http.Request, res *result) {
				io.WriteString(w, "all of it")
				time.Sleep(3 * testDeadline)
				res.cause = context.Cause(r.Context())
			},
			wantStatus: 200, wantBody: "all of it",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var res result
			var handlerDone, returnedAfterHandler atomic.Bool
			inner := Timeout(testDeadline)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tt.handler(w, r, &res)
				handlerDone.Store(true)
			}))
			srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer func() { returnedAfterHandler.Store(handlerDone.Load()) }()
				inner.ServeHTTP(w, r)
			}))

			start := time.Now()
			resp, body, err := do(t, mustRequest(t, "GET", srv.URL, nil))
			elapsed := time.Since(start)
			srv.Close() // waits for the handler
			if tt.wantStatus == 0 {
				if err == nil {
					t.Fatalf("got complete response %d %q, want it aborted", resp.StatusCode, body)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != tt.wantStatus || body != tt.wantBody {
					t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
				}
				if tt.wantStatus == 503 && resp.Header.Get("X-Handler") != "" {
					t.Fatal("503 carries a header the handler set")
				}
			}
			if tt.wantFast && elapsed > 4*testDeadline {
				t.Errorf("answered after %v, want near the %v deadline", elapsed, testDeadline)
			}
			if tt.wantStatus != 200 && res.cause != http.ErrHandlerTimeout {
				t.Errorf("context cause %v, want http.ErrHandlerTimeout", res.cause)
			}
			if !errors.Is(res.writeErr, tt.wantErr) {
				t.Errorf("late write returned %v, want %v", res.writeErr, tt.wantErr)
			}
			if !returnedAfterHandler.Load() {
				t.Error("Timeout returned before the handler did")
			}
		})
	}
}

// The handler's own panic must reach Recover with the handler's stack, since
// Timeout runs it on the server's goroutine.
func TestTimeoutPanic(t *testing.T) {
	logger, sink := newTestLogger()
	srv := newServer(t, Recover(logger)(Timeout(time.Second)(http.HandlerFunc(panicBeforeWrite))))
	resp, _, err := do(t, mustRequest(t, "GET", srv.URL, nil))
	if err != nil || resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("got %v, %v; want a 500", resp, err)
	}
	srv.Close()
	recs := sink.recordsWithMsg(t, "panic serving request")
	if len(recs) != 1 || !strings.Contains(recs[0]["stack"].(string), "panicBeforeWrite") {
		t.Fatalf("got %v, want one record with the handler's stack", recs)
	}
}

func TestTimeoutRejectsNonPositive(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		t.Run(d.String(), func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatalf("Timeout(%v) did not panic", d)
				}
			}()
			Timeout(d)
		})
	}
}

// Many requests timing out while their handlers keep writing headers and
// bodies: run with -race, this is where the timer and the handler meet.
func TestTimeoutConcurrentWrites(t *testing.T) {
	srv := newServer(t, Timeout(5*time.Millisecond)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range 50 {
			w.Header().Set("X-Step", strings.Repeat("s", i%5))
			if _, err := io.WriteString(w, "."); err != nil {
				return
			}
			time.Sleep(200 * time.Microsecond)
		}
	})))
	done := make(chan struct{})
	for range 20 {
		go func() {
			defer func() { done <- struct{}{} }()
			resp, err := http.Get(srv.URL)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	for range 20 {
		<-done
	}
}

// A handler that panics after its 503 went out: the panic is still logged,
// the client keeps its 503, and nothing writes to the response after
// ServeHTTP returned (-race checks the last part).
func TestTimeoutPanicAfterDeadline(t *testing.T) {
	logger, sink := newTestLogger()
	srv := newServer(t, Recover(logger)(Timeout(testDeadline)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		time.Sleep(testDeadline)
		panic("late boom")
	}))))
	resp, body, err := do(t, mustRequest(t, "GET", srv.URL, nil))
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || body != timeoutBody {
		t.Fatalf("got %v %q %v, want the 503", resp, body, err)
	}
	srv.Close()
	if recs := sink.recordsWithMsg(t, "panic serving request"); len(recs) != 1 || recs[0]["panic"] != "late boom" {
		t.Fatalf("got %v, want the late panic logged once", recs)
	}
}

// A handler that returns the moment its context ends races the timer
// goroutine; whichever wins, the client must get the 503, never an empty 200.
func TestTimeoutHandlerReturnsOnDeadline(t *testing.T) {
	srv := newServer(t, Timeout(time.Millisecond)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})))
	for i := range 200 {
		resp, body, err := do(t, mustRequest(t, "GET", srv.URL, nil))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusServiceUnavailable || body != timeoutBody {
			t.Fatalf("request %d: got %d %q, want 503 %q", i, resp.StatusCode, body, timeoutBody)
		}
	}
}
