package loadgen

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		url      string
		wantAddr string
		wantErr  error
	}{
		{"http://127.0.0.1:8080/", "127.0.0.1:8080", nil},
		{"http://127.1.2.3:80/x?y=1", "127.1.2.3:80", nil},
		{"http://localhost:9000/", "127.0.0.1:9000", nil},
		{"http://[::1]:8080/", "[::1]:8080", nil},
		{"http://[::ffff:127.0.0.1]:8080/", "127.0.0.1:8080", nil},
		{"http://127.0.0.1/", "127.0.0.1:80", nil},
		{"http://10.0.0.1:8080/", "", ErrNotLoopback},
		{"http://192.168.1.1/", "", ErrNotLoopback},
		{"http://0.0.0.0:8080/", "", ErrNotLoopback},
		{"http://example.com/", "", ErrNotLoopback},
		{"http://[::2]:8080/", "", ErrNotLoopback},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			got, err := parseTarget(tt.url)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("parseTarget: got error %v, want %v", err, tt.wantErr)
			}
			if got.addr != tt.wantAddr {
				t.Errorf("addr: got %q, want %q", got.addr, tt.wantAddr)
			}
		})
	}
	if _, err := parseTarget("https://127.0.0.1/"); err == nil {
		t.Error("https: got no error, want one")
	}
}

func TestReadResponse(t *testing.T) {
	tests := []struct {
		name       string
		raw        string
		wantStatus int
		wantClose  bool
		wantErr    bool
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, false, false},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;x=y\r\nabc\r\n0\r\nTrailer: 1\r\n\r\n", 200, false, false},
		{"close", "HTTP/1.1 404 Not Found\r\nconnection: Close\r\ncontent-length: 0\r\n\r\n", 404, true, false},
		{"http/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, true, false},
		{"no length", "HTTP/1.1 200 OK\r\n\r\nto the end", 200, true, false},
		{"no content", "HTTP/1.1 204 No Content\r\n\r\n", 204, false, false},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nhello", 200, false, true},
		{"garbage", "SSH-2.0-OpenSSH\r\n\r\n", 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Two responses back to back: the first must end exactly
			// where the second begins.
			raw := tt.raw
			if !tt.wantErr && !tt.wantClose {
				raw += "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
			}
			r := bufio.NewReader(strings.NewReader(raw))
			resp, err := readResponse(r)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error: got %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if resp.status != tt.wantStatus || resp.close != tt.wantClose {
				t.Errorf("got status %d close %v, want %d %v", resp.status, resp.close, tt.wantStatus, tt.wantClose)
			}
			if !tt.wantClose {
				if next, err := readResponse(r); err != nil || next.status != 201 {
					t.Errorf("next response: got %d, %v; want 201", next.status, err)
				}
			}
		})
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 100000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, q := range []float64{0.5, 0.9, 0.99} {
		got := float64(h.quantile(q))
		want := q * 100000 * float64(time.Microsecond)
		if got < want*0.99 || got > want*1.01 {
			t.Errorf("quantile(%v): got %v, want %v within 1%%", q, time.Duration(got), time.Duration(want))
		}
	}
	if h.max != 100*time.Millisecond {
		t.Errorf("max: got %v, want 100ms", h.max)
	}
	for i := range bucketCount {
		if b := bucketOf(bucketValue(i)); b != i {
			t.Fatalf("bucketOf(bucketValue(%d)) = %d", i, b)
		}
	}
}

func TestRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			http.Error(w, "no", http.StatusInternalServerError)
			return
		}
		w.Write([]byte("Hello, World!\n"))
	}))
	defer srv.Close()

	for _, fresh := range []bool{false, true} {
		res, err := Run(context.Background(), Config{URL: srv.URL + "/", Conns: 4, Requests: 500, Duration: 10 * time.Second, Fresh: fresh})
		if err != nil {
			t.Fatal(err)
		}
		if res.OK != 500 || res.Errors.Total() != 0 {
			t.Errorf("fresh=%v: got %d ok, errors %+v; want 500 ok, no errors", fresh, res.OK, res.Errors)
		}
		if res.P50 <= 0 || res.Max < res.P99 {
			t.Errorf("fresh=%v: implausible latencies %+v", fresh, res)
		}
	}

	res, err := Run(context.Background(), Config{URL: srv.URL + "/fail", Conns: 2, Requests: 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 0 || res.Errors.Non2xx != 10 {
		t.Errorf("/fail: got %d ok, errors %+v; want 10 non-2xx", res.OK, res.Errors)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	res, err = Run(context.Background(), Config{URL: "http://" + closed + "/", Conns: 1, Requests: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors.Refused != 3 {
		t.Errorf("closed port: got errors %+v, want 3 refused", res.Errors)
	}

	if _, err := Run(context.Background(), Config{URL: "http://10.1.2.3/"}); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("non-loopback: got %v, want ErrNotLoopback", err)
	}
	if _, err := Run(context.Background(), Config{URL: srv.URL, Duration: time.Hour}); err == nil {
		t.Error("one-hour run: got no error, want the duration refused")
	}
}
