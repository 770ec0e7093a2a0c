package middleware

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// unsized hides the length of a body so the client sends it chunked, without
// Content-Length.
type unsized struct{ io.Reader }

func TestBodyLimit(t *testing.T) {
	const limit = 16
	tooLargeBody := "request body larger than 16 bytes\n"

	// readThen400 is the usual handler: read the body, answer 400 when that
	// fails.
	readThen400 := func(w http.ResponseWriter, r *http.Request) error {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return err
		}
		w.Write(b)
		return nil
	}
	tests := []struct {
		name       string
		body       string
		sized      bool // send Content-Length
		handler    func(w http.ResponseWriter, r *http.Request) error
		wantStatus int
		wantBody   string
		wantCalled bool
		wantErr    bool // the handler's read failed with *http.MaxBytesError
	}{
		{"sized under", "hello", true, readThen400, 200, "hello", true, false},
		{"sized exactly at limit", strings.Repeat("a", limit), true, readThen400, 200, strings.Repeat("a", limit), true, false},
		{"sized over", strings.Repeat("a", limit+1), true, readThen400, 413, tooLargeBody, false, false},
		{"sized far over", strings.Repeat("a", 1<<20), true, readThen400, 413, tooLargeBody, false, false},
		{"unsized under", "hello", false, readThen400, 200, "hello", true, false},
		{"unsized exactly at limit", strings.Repeat("a", limit), false, readThen400, 200, strings.Repeat("a", limit), true, false},
		{"unsized over", strings.Repeat("a", limit+1), false, readThen400, 413, tooLargeBody, true, true},
		{"unsized far over", strings.Repeat("a", 1<<20), false, readThen400, 413, tooLargeBody, true, true},
		{
			"unsized over, handler ignores the error", strings.Repeat("a", 100), false,
			func(w http.ResponseWriter, r *http.Request) error {
				_, err := io.ReadAll(r.Body)
				return err
			},
			413, tooLargeBody, true, true,
		},
		{
			"unsized over after the handler wrote", strings.Repeat("a", 100), false,
			func(w http.ResponseWriter, r *http.Request) error {
				// HTTP/1 closes the body once the response starts, unless
				// asked not to; this also goes through the wrapper's Unwrap.
				if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
					return err
				}
				w.WriteHeader(http.StatusAccepted)
				w.(http.Flusher).Flush()
				_, err := io.ReadAll(r.Body)
				io.WriteString(w, "accepted")
				return err
			},
			202, "accepted", true, true,
		},
		{
			"no body", "", true,
			func(w http.ResponseWriter, r *http.Request) error {
				io.WriteString(w, "empty")
				return nil
			},
			200, "empty", true, false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			var readErr error
			mux := http.NewServeMux()
			mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
				called = true
				readErr = tt.handler(w, r)
			})
			srv := newServer(t, BodyLimit(limit)(mux))

			var body io.Reader = strings.NewReader(tt.body)
			if !tt.sized {
				body = unsized{body}
			}
			req := mustRequest(t, "POST", srv.URL, body)
			if !tt.sized {
				req.ContentLength = -1
			}
			resp, got, err := do(t, req)
			srv.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus || got != tt.wantBody {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, got, tt.wantStatus, tt.wantBody)
			}
			if tt.wantStatus == 413 && !resp.Close {
				t.Error("413 keeps the connection open with the rest of the body on it")
			}
			if called != tt.wantCalled {
				t.Errorf("handler called: %v, want %v", called, tt.wantCalled)
			}
			var tooBig *http.MaxBytesError
			if errors.As(readErr, &tooBig) != tt.wantErr {
				t.Errorf("handler's read error %v, want MaxBytesError: %v", readErr, tt.wantErr)
			}
		})
	}
}

// A 413 decided from Content-Length must not wait for the body: a client
// sending "Expect: 100-continue" never sends it.
func TestBodyLimitExpectContinue(t *testing.T) {
	srv := newServer(t, BodyLimit(16)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("handler called for an oversized body")
	})))
	req := mustRequest(t, "PUT", srv.URL, strings.NewReader(strings.Repeat("a", 1000)))
	req.Header.Set("Expect", "100-continue")
	resp, _, err := do(t, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("got %d, want 413", resp.StatusCode)
	}
}
