package middleware

import (
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestRequestID(t *testing.T) {
	type seen struct{ ctx, chi string }
	got := make(chan seen, 1)
	srv := newServer(t, RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{RequestIDFromContext(r.Context()), valueID(r)}
	})))

	longest := strings.Repeat("a", MaxRequestIDLen)
	tests := []struct {
		name     string
		incoming []string // nil: no header
		keep     bool
	}{
		{"none", nil, false},
		{"valid", []string{"abc-DEF_012.x:y"}, true},
		{"longest", []string{longest}, true},
		{"oversized", []string{longest + "b"}, false},
		{"huge", []string{strings.Repeat("x", 4000)}, false},
		{"empty", []string{""}, false},
		{"space", []string{"abc def"}, false},
		{"markup", []string{"<script>alert(1)</script>"}, false},
		{"slash", []string{"a/b"}, false},
		{"quote", []string{`a"b`}, false},
		{"json", []string{`{"x":1}`}, false},
		{"non-ascii", []string{"idé"}, false},
		{"tab", []string{"a\tb"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := mustRequest(t, "GET", srv.URL, nil)
			for _, v := range tt.incoming {
				req.Header.Add(RequestIDHeader, v)
			}
			resp, _, err := do(t, req)
			if err != nil {
				t.Fatal(err)
			}
			s := <-got
			header := resp.Header.Get(RequestIDHeader)
			if s.ctx != header || s.chi != header {
				t.Fatalf("context id %q, ctx.Value id %q, header %q: want all equal", s.ctx, s.chi, header)
			}
			if !validRequestID(header) {
				t.Fatalf("response id %q is not a valid id", header)
			}
			if tt.keep && header != tt.incoming[0] {
				t.Fatalf("got id %q, want the incoming %q kept", header, tt.incoming[0])
			}
			if !tt.keep {
				if len(tt.incoming) > 0 && header == tt.incoming[0] {
					t.Fatalf("incoming id %q was kept, want it replaced", header)
				}
				if !strings.HasPrefix(header, idPrefix()) {
					t.Fatalf("got id %q, want a generated one with prefix %q", header, idPrefix())
				}
			}
		})
	}
}

func TestRequestIDUniqueInProcess(t *testing.T) {
	seen := make(map[string]bool)
	for range 10000 {
		id := newRequestID(idPrefix())
		if seen[id] {
			t.Fatalf("id %q generated twice", id)
		}
		seen[id] = true
	}
}

// Workers are separate processes started from the same binary on the same
// host, often reusing a dead worker's pid: their ids must still differ.
func TestRequestIDUniqueAcrossProcesses(t *testing.T) {
	if os.Getenv("BROOD_TEST_PRINT_ID") == "1" {
		os.Stdout.WriteString(newRequestID(idPrefix()))
		os.Exit(0)
	}
	ids := map[string]bool{newRequestID(idPrefix()): true}
	for range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRequestIDUniqueAcrossProcesses$")
		cmd.Env = append(os.Environ(), "BROOD_TEST_PRINT_ID=1")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("child: %v", err)
		}
		id := string(out)
		if !validRequestID(id) {
			t.Fatalf("child printed %q, want a request id", id)
		}
		if ids[id] {
			t.Fatalf("child process generated %q, which another process also generated", id)
		}
		ids[id] = true
	}
}

func BenchmarkNewRequestID(b *testing.B) {
	p := idPrefix()
	b.ReportAllocs()
	for b.Loop() {
		_ = newRequestID(p)
	}
}

// valueID reads the id the way code that only has a context.Context does.
func valueID(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey{}).(string)
	return id
}
