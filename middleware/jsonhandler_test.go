package middleware

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The shortcut must write exactly what slog writes for the same record, or
// log processors would see two formats.
func TestJSONHandlerMatchesSlog(t *testing.T) {
	at := time.Date(2026, 11, 21, 5, 54, 38, 123456789, time.FixedZone("X", 5400))
	records := []accessRecord{
		{time: at, level: slog.LevelInfo, method: "GET", path: "/", status: 200, bytes: 14, duration: 12345 * time.Nanosecond, remote: "127.0.0.1:5555", requestID: "abc-1"},
		{time: at.Truncate(time.Second), level: slog.LevelError, method: "POST", path: "/items?x=1&y=%20z", status: 502, bytes: 0, duration: 3 * time.Second, remote: "[::1]:80", requestID: ""},
		{time: at, level: slog.LevelInfo, method: "GET", path: "/aborted", status: 0, aborted: true},
		{time: at, level: slog.LevelInfo, method: "GET", path: "/ws", status: 101, hijacked: true},
		{time: at, level: slog.LevelInfo, method: "GET", path: "/ws", status: 0, aborted: true, hijacked: true},
		// Everything slog escapes, and what it leaves alone (HTML).
		{time: at, level: slog.LevelInfo, method: "GET", path: "/q\"\\\n\r\t\x00\x1f\x7f<>&'", remote: "\xff\xfe bad utf-8", requestID: "\u2028\u2029é漢字🙂"},
		{time: time.Unix(0, 0).UTC(), level: slog.LevelInfo, method: strings.Repeat("M", 300), path: strings.Repeat("/ü", 40000)},
		// Times: appendTime caches the second, so the same second in
		// other zones and other fractions of it must come out right.
		{time: at.Truncate(time.Millisecond), level: slog.LevelInfo},
		{time: at.Add(-123456789 + 100), level: slog.LevelInfo},
		{time: at.UTC(), level: slog.LevelInfo},
		{time: at.In(time.FixedZone("W", -(9*3600 + 30*60))), level: slog.LevelInfo},
		{time: at.Local(), level: slog.LevelInfo},
		{time: time.Now(), level: slog.LevelInfo},
		{time: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), level: slog.LevelInfo},
		{time: time.Date(0, 1, 1, 0, 0, 0, 1, time.FixedZone("E", 3600)), level: slog.LevelInfo},
	}
	withs := [][]slog.Attr{
		nil,
		{slog.String("role", "worker"), slog.Int("slot", 1), slog.Int("pid", 4242)},
		{slog.Group("g", slog.Int("a", 1), slog.String("b", "x\"y")), slog.Any("err", errors.New("e")), slog.Duration("d", time.Second), slog.Bool("ok", false), slog.Float64("f", 1.5), slog.Time("t", at)},
	}
	for wi, with := range withs {
		for ri, rec := range records {
			var fast, slow bytes.Buffer
			jh := NewJSONHandler(&fast, nil).WithAttrs(with[:len(with)/2]).WithAttrs(with[len(with)/2:]).(*JSONHandler)
			if !jh.fast {
				t.Fatal("shortcut off for a handler without options")
			}
			if err := jh.writeAccess(&rec); err != nil {
				t.Fatal(err)
			}
			if err := jh.Flush(); err != nil {
				t.Fatal(err)
			}
			sh := slog.NewJSONHandler(&slow, nil).WithAttrs(with)
			if err := sh.Handle(context.Background(), rec.slogRecord()); err != nil {
				t.Fatal(err)
			}
			if fast.String() != slow.String() {
				t.Errorf("with %d, record %d:\nshortcut %s\nslog     %s", wi, ri, fast.String(), slow.String())
			}
		}
	}
}

// Options the shortcut cannot honour, and groups, send AccessLog through
// slog.
func TestJSONHandlerShortcutOff(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    slog.Handler
		fast bool
	}{
		{"no options", NewJSONHandler(io.Discard, nil), true},
		{"level", NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}), true},
		{"ReplaceAttr", NewJSONHandler(io.Discard, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { return a }}), false},
		{"AddSource", NewJSONHandler(io.Discard, &slog.HandlerOptions{AddSource: true}), false},
		{"group", NewJSONHandler(io.Discard, nil).WithGroup("g"), false},
		{"empty group", NewJSONHandler(io.Discard, nil).WithGroup(""), true},
		{"attrs then group", NewJSONHandler(io.Discard, nil).WithAttrs([]slog.Attr{slog.Int("a", 1)}).WithGroup("g").WithAttrs([]slog.Attr{slog.Int("b", 1)}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.h.(*JSONHandler).fast; got != tc.fast {
				t.Errorf("shortcut %v, want %v", got, tc.fast)
			}
		})
	}

	// Through AccessLog: with a group the record is slog's, nested.
	var buf bytes.Buffer
	logger := slog.New(NewJSONHandler(&buf, nil)).WithGroup("http")
	srv := newServer(t, AccessLog(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	if _, _, err := do(t, mustRequest(t, "GET", srv.URL+"/x", nil)); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("%q: %v", buf.String(), err)
	}
	if g, _ := rec["http"].(map[string]any); g["path"] != "/x" {
		t.Errorf("record %v, want the request's fields in group http", rec)
	}
}

// Both paths share one lock, so records never interleave inside a line even
// when the writer is not safe for concurrent use.
func TestJSONHandlerConcurrentLines(t *testing.T) {
	var buf bytes.Buffer // not safe for concurrent use on purpose
	jh := NewJSONHandler(&buf, nil)
	logger := slog.New(jh).With("pid", 1)
	fast := logger.Handler().(*JSONHandler)
	var wg sync.WaitGroup
	const n = 200
	for i := range 4 {
		wg.Go(func() {
			for range n {
				if i%2 == 0 {
					fast.writeAccess(&accessRecord{time: time.Now(), method: "GET", path: strings.Repeat("p", 100)})
				} else {
					logger.Info("other", "k", strings.Repeat("v", 100))
				}
			}
		})
	}
	wg.Wait()
	fast.Flush()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 4*n {
		t.Fatalf("%d lines, want %d", len(lines), 4*n)
	}
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Fatalf("line is not one JSON object: %q", l)
		}
	}
}

// writes records every Write call.
type writes struct {
	mu    sync.Mutex
	calls []string
}

func (w *writes) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, string(p))
	return len(p), nil
}

func (w *writes) get() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.calls)
}

func TestJSONHandlerBatchesAccessLines(t *testing.T) {
	access := func(h *JSONHandler, path string) {
		t.Helper()
		if err := h.writeAccess(&accessRecord{time: time.Now(), method: "GET", path: path}); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("held lines go out together within batchDelay", func(t *testing.T) {
		var w writes
		h := NewJSONHandler(&w, nil)
		for i := range 5 {
			access(h, fmt.Sprint("/", i))
		}
		if got := w.get(); len(got) != 0 {
			t.Fatalf("%d writes before batchDelay, want 0 (lines held)", len(got))
		}
		deadline := time.Now().Add(2 * time.Second)
		for len(w.get()) == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		got := w.get()
		if len(got) != 1 || strings.Count(got[0], "\n") != 5 {
			t.Fatalf("writes %q; want one write of 5 lines", got)
		}
		for i := range 5 {
			if !strings.Contains(strings.Split(got[0], "\n")[i], fmt.Sprintf(`"path":"/%d"`, i)) {
				t.Errorf("line %d out of order: %q", i, got[0])
			}
		}
	})
	t.Run("batches stay within batchMax", func(t *testing.T) {
		var w writes
		h := NewJSONHandler(&w, nil)
		for i := range 100 {
			access(h, fmt.Sprint("/", strings.Repeat("x", i)))
		}
		access(h, "/"+strings.Repeat("big", batchMax)) // alone: too big to hold
		h.Flush()
		lines := 0
		for _, c := range w.get() {
			if len(c) > batchMax && strings.Count(c, "\n") > 1 {
				t.Errorf("write of %d bytes and %d lines; want at most %d bytes unless one line", len(c), strings.Count(c, "\n"), batchMax)
			}
			if !strings.HasSuffix(c, "\n") {
				t.Errorf("write does not end a line: %q", c)
			}
			lines += strings.Count(c, "\n")
		}
		if lines != 101 {
			t.Errorf("%d lines written, want 101", lines)
		}
		if n := len(w.get()); n > 20 {
			t.Errorf("%d writes for 101 lines; want them batched", n)
		}
	})
	t.Run("other records keep their place", func(t *testing.T) {
		var w writes
		h := NewJSONHandler(&w, nil)
		logger := slog.New(h)
		access(h, "/first")
		logger.Info("second")
		access(h, "/third")
		h.Flush()
		all := strings.Join(w.get(), "")
		i1, i2, i3 := strings.Index(all, "/first"), strings.Index(all, `"second"`), strings.Index(all, "/third")
		if i1 < 0 || i2 < i1 || i3 < i2 {
			t.Errorf("records out of order: %q", all)
		}
		if got := w.get(); len(got) != 2 {
			t.Errorf("writes %q; want the held line written with the record behind it, then the last line", got)
		}
	})
}

func TestJSONHandlerBatchLimit(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "access.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for _, tc := range []struct {
		name string
		w    io.Writer
		want int
	}{
		{"regular file", f, batchMaxFile},
		{"pipe", w, batchMax},
		{"other writer", &bytes.Buffer{}, batchMax},
	} {
		if got := NewJSONHandler(tc.w, nil).out.max; got != tc.want {
			t.Errorf("%s: batches of %d bytes, want %d", tc.name, got, tc.want)
		}
	}
}
