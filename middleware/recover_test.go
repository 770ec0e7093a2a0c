package middleware

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

func panicBeforeWrite(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Length", "1000") // must not survive into the 500
	panic("boom before write")
}

func panicAfterFlush(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
	w.Write([]byte("partial"))
	w.(http.Flusher).Flush()
	panic("boom after flush")
}

func panicAfterWriteHeader(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
	w.Write([]byte("partial"))
	panic("boom after header")
}

func panicAbort(w http.ResponseWriter, r *http.Request) {
	panic(http.ErrAbortHandler)
}

func panicError(w http.ResponseWriter, r *http.Request) {
	panic(errors.New("boom error"))
}

func TestRecover(t *testing.T) {
	tests := []struct {
		name     string
		handler  http.HandlerFunc
		want500  bool   // a clean 500 response
		logged   string // panic value in the log; "" for no record
		funcName string // must appear in the logged stack
	}{
		{"before write", panicBeforeWrite, true, "boom before write", "panicBeforeWrite"},
		{"error value", panicError, true, "boom error", "panicError"},
		{"after flush", panicAfterFlush, false, "boom after flush", "panicAfterFlush"},
		{"after header", panicAfterWriteHeader, false, "boom after header", "panicAfterWriteHeader"},
		{"abort handler", panicAbort, false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logger, sink := newTestLogger()
			mux := http.NewServeMux()
			mux.Handle("/panic", tt.handler)
			mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("still here")) })
			srv := newServer(t, RequestID(Recover(logger)(mux)))

			resp, body, err := do(t, mustRequest(t, "GET", srv.URL+"/panic", nil))
			if tt.want500 {
				if err != nil {
					t.Fatalf("got error %v, want a 500", err)
				}
				if resp.StatusCode != http.StatusInternalServerError {
					t.Fatalf("got status %d, want 500", resp.StatusCode)
				}
				if body != "Internal Server Error\n" {
					t.Fatalf("got body %q, want %q", body, "Internal Server Error\n")
				}
			} else if err == nil {
				// A started response must not look complete to the client.
				t.Fatalf("got complete response %d %q, want the response aborted", resp.StatusCode, body)
			}

			// The worker keeps serving.
			resp, body, err = do(t, mustRequest(t, "GET", srv.URL+"/ok", nil))
			if err != nil || resp.StatusCode != http.StatusOK || body != "still here" {
				t.Fatalf("request after the panic: err %v, status %v, body %q; want 200 %q", err, resp, body, "still here")
			}

			srv.Close()
			recs := sink.recordsWithMsg(t, "panic serving request")
			if tt.logged == "" {
				if len(recs) != 0 {
					t.Fatalf("got %d panic records, want none for http.ErrAbortHandler: %v", len(recs), recs)
				}
				return
			}
			if len(recs) != 1 {
				t.Fatalf("got %d panic records, want 1: %v", len(recs), sink.records(t))
			}
			rec := recs[0]
			if rec["panic"] != tt.logged {
				t.Errorf("logged panic %q, want %q", rec["panic"], tt.logged)
			}
			if rec["level"] != "ERROR" {
				t.Errorf("logged at %v, want ERROR", rec["level"])
			}
			if id, _ := rec["request_id"].(string); !validRequestID(id) {
				t.Errorf("logged request_id %q, want the request's id", id)
			}
			if rec["path"] != "/panic" || rec["method"] != "GET" {
				t.Errorf("logged %v %v, want GET /panic", rec["method"], rec["path"])
			}
			if stack, _ := rec["stack"].(string); !strings.Contains(stack, tt.funcName) {
				t.Errorf("logged stack does not name %s:\n%s", tt.funcName, stack)
			}
		})
	}
}

// The id in the panic record must be the one the client got, or the log
// cannot be searched from a bug report.
func TestRecoverLogsResponseRequestID(t *testing.T) {
	logger, sink := newTestLogger()
	srv := newServer(t, RequestID(Recover(logger)(http.HandlerFunc(panicBeforeWrite))))
	req := mustRequest(t, "GET", srv.URL, nil)
	req.Header.Set(RequestIDHeader, "from-the-proxy-1")
	resp, _, err := do(t, req)
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if got := resp.Header.Get(RequestIDHeader); got != "from-the-proxy-1" {
		t.Fatalf("500 carries id %q, want %q", got, "from-the-proxy-1")
	}
	recs := sink.recordsWithMsg(t, "panic serving request")
	if len(recs) != 1 || recs[0]["request_id"] != "from-the-proxy-1" {
		t.Fatalf("got records %v, want one with request_id from-the-proxy-1", recs)
	}
}
