package logfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// recorder keeps every Write call separately.
type recorder struct {
	mu     sync.Mutex
	writes [][]byte
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, bytes.Clone(p))
	return len(p), nil
}

// File's guarantee reaches slog records only if slog.JSONHandler hands each
// record to one Write. It does today (it formats into a buffer, then writes
// under its mutex); this test notices if a Go release changes that.
func TestJSONHandlerOneWritePerRecord(t *testing.T) {
	var rec recorder
	base := slog.New(slog.NewJSONHandler(&rec, &slog.HandlerOptions{AddSource: true}))
	loggers := []*slog.Logger{
		base,
		base.With("role", "worker", "slot", 3),
		base.WithGroup("req").With("id", "abc"),
	}
	big := strings.Repeat("line one\nline two\t\"quoted\" ", 2000) // ~50KB with raw newlines
	const goroutines, records = 4, 200
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for n := range records {
				l := loggers[n%len(loggers)]
				switch n % 3 {
				case 0:
					l.Info("hello", "g", g, "n", n)
				case 1:
					l.Warn(big, slog.Group("nested", "err", errors.New("bad\nthing"), "n", n))
				default:
					l.Error("x", "many", strings.Repeat("y", n*50), "n", n)
				}
			}
		})
	}
	wg.Wait()
	if got, want := len(rec.writes), goroutines*records; got != want {
		t.Fatalf("got %d writes, want one per record: %d", got, want)
	}
	for _, w := range rec.writes {
		if bytes.Count(w, []byte("\n")) != 1 || w[len(w)-1] != '\n' {
			t.Fatalf("write is not exactly one line: %.200q", w)
		}
		if !json.Valid(w) {
			t.Fatalf("write is not one JSON value: %.200q", w)
		}
	}
}

func TestNewLogger(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	log := NewLogger(f, &slog.HandlerOptions{Level: slog.LevelDebug}).With("pid", 42)
	log.Debug("started", "addr", ":8080")
	log.Info("ready")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var msgs []string
	readLines(t, path, func(l []byte) {
		var rec struct {
			Msg string
			PID int
		}
		if err := json.Unmarshal(l, &rec); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if rec.PID != 42 {
			t.Errorf("line %q: got pid %d, want 42", l, rec.PID)
		}
		msgs = append(msgs, rec.Msg)
	})
	if got, want := strings.Join(msgs, ","), "started,ready"; got != want {
		t.Errorf("got messages %s, want %s", got, want)
	}
}
