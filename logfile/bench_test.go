package logfile

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A 200-byte access-log-like line.
var benchLine = func() []byte {
	l := fmt.Appendf(nil, `{"time":"2024-05-01T12:00:00.000Z","method":"GET","path":"/","status":200,"bytes":13,"dur_ms":0.05,"id":"%s"}`, bytes.Repeat([]byte("x"), 64))
	l = append(l, bytes.Repeat([]byte(" "), 199-len(l))...)
	return append(l, '\n')
}()

func benchFile(b *testing.B) *File {
	b.Helper()
	f, err := Open(filepath.Join(b.TempDir(), "access.log"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return f
}

// BenchmarkWrite is the cost of one access-log line on the request path.
func BenchmarkWrite(b *testing.B) {
	b.Run("file", func(b *testing.B) {
		f := benchFile(b)
		b.SetBytes(int64(len(benchLine)))
		for b.Loop() {
			if _, err := f.Write(benchLine); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("file-parallel", func(b *testing.B) {
		f := benchFile(b)
		b.SetBytes(int64(len(benchLine)))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := f.Write(benchLine); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("discard", func(b *testing.B) {
		b.SetBytes(int64(len(benchLine)))
		for b.Loop() {
			io.Discard.Write(benchLine)
		}
	})
}

// BenchmarkSlog is a slog record through NewJSONHandler into a File, against
// the same handler writing to io.Discard: the difference is the file's share.
func BenchmarkSlog(b *testing.B) {
	for _, tc := range []struct {
		name string
		w    func(b *testing.B) io.Writer
	}{
		{"file", func(b *testing.B) io.Writer { return benchFile(b) }},
		{"discard", func(*testing.B) io.Writer { return io.Discard }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			log := slog.New(slog.NewJSONHandler(tc.w(b), nil)).With("role", "worker", "pid", os.Getpid())
			for b.Loop() {
				log.Info("request", "method", "GET", "path", "/", "status", 200, "dur", 50*time.Microsecond)
			}
		})
	}
}

// BenchmarkCompress is the agent's cost to gzip a rotated access log.
func BenchmarkCompress(b *testing.B) {
	data := bytes.Repeat(benchLine, 20000) // 4MB
	dir := b.TempDir()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		name := filepath.Join(dir, "a.log")
		if err := os.WriteFile(name, data, 0o644); err != nil {
			b.Fatal(err)
		}
		if err := compressFile(name); err != nil {
			b.Fatal(err)
		}
		os.Remove(name + ".gz")
	}
}

// BenchmarkServer serves hello-world over loopback with and without one
// access-log line per request written to a File: the ratio of the two is
// the throughput the file costs (brood wants at least 0.85). Client and
// server share the machine, so only the ratio means anything.
func BenchmarkServer(b *testing.B) {
	for _, logged := range []bool{false, true} {
		b.Run(map[bool]string{false: "nolog", true: "file"}[logged], func(b *testing.B) {
			var w io.Writer = io.Discard
			if logged {
				w = benchFile(b)
			}
			srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				io.WriteString(rw, "Hello, World!")
				if logged {
					w.Write(benchLine)
				}
			}))
			defer srv.Close()
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Get(srv.URL)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
}
