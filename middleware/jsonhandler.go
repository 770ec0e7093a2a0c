package middleware

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// JSONHandler is a slog.Handler that writes exactly what slog.NewJSONHandler
// writes, one JSON object a line, and lets AccessLog write its records
// without slog's generic machinery. Measured on hello in a 2-worker cluster,
// slog's Record and its JSON formatting were most of what the default chain
// cost; AccessLog's own encoder writes the same line for a fraction of it.
//
// Every other record goes through an slog.JSONHandler unchanged. AccessLog
// takes its shortcut only with a JSONHandler whose options have no
// ReplaceAttr or AddSource and which has no open group (WithGroup): then the
// access record it writes is byte for byte the one slog would write. With
// any other handler AccessLog goes through slog as usual.
//
// Access lines are held up to 5ms and written together, at most 4 KiB (the
// size a pipe keeps whole; 64 KiB to a regular file) in one write, instead
// of one write(2) per request; every other record is written at once, after the held lines, so
// a process's records stay in order. Flush writes what is held; a process
// killed outright loses at most the last 5ms of access lines.
//
// The framework builds its JSON loggers with it (and flushes them when a
// process stops); use it in your own WithLogger to keep the shortcut.
type JSONHandler struct {
	inner slog.Handler
	out   *lineWriter // shared by every handler derived from one NewJSONHandler
	// fast: no ReplaceAttr, AddSource or group, so the shortcut applies.
	fast bool
	// attrs are the WithAttrs attributes as slog formats them, each
	// preceded by a comma.
	attrs []byte
}

// NewJSONHandler returns a JSONHandler writing to w with opts (nil for the
// defaults), as slog.NewJSONHandler(w, opts) would.
func NewJSONHandler(w io.Writer, opts *slog.HandlerOptions) *JSONHandler {
	if opts == nil {
		opts = &slog.HandlerOptions{}
	}
	// One writer for both paths: slog's own lock does not cover the
	// shortcut's writes, and w need not be safe for concurrent use.
	out := &lineWriter{w: w, max: batchLimit(w)}
	return &JSONHandler{
		inner: slog.NewJSONHandler(out, opts),
		out:   out,
		fast:  opts.ReplaceAttr == nil && !opts.AddSource,
	}
}

// Enabled reports whether a record at level would be written.
func (h *JSONHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

// Handle writes r as slog.JSONHandler does.
func (h *JSONHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.inner.Handle(ctx, r)
}

// Flush writes the access lines held for batching (see NewJSONHandler).
// The framework calls it before a worker exits; a program that uses a
// JSONHandler with AccessLog should call it before exiting, too.
func (h *JSONHandler) Flush() error { return h.out.Flush() }

// WithAttrs returns a handler whose records carry attrs.
func (h *JSONHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	h2 := *h
	h2.inner = h.inner.WithAttrs(attrs)
	if h.fast {
		h2.attrs = append(h.attrs[:len(h.attrs):len(h.attrs)], formatAttrs(attrs)...)
	}
	return &h2
}

// WithGroup returns a handler that puts later attributes in group name.
// AccessLog's shortcut does not apply to it.
func (h *JSONHandler) WithGroup(name string) slog.Handler {
	h2 := *h
	h2.inner = h.inner.WithGroup(name)
	h2.fast = h.fast && name == "" // slog ignores an empty group name
	return &h2
}

// formatAttrs returns attrs as slog.JSONHandler formats them in a record,
// each preceded by a comma. slog itself does the formatting (a record with
// no time and an empty message, the known head cut off), so values of every
// kind, LogValuers and groups come out exactly as slog writes them.
func formatAttrs(attrs []slog.Attr) []byte {
	var buf bytes.Buffer
	r := slog.NewRecord(time.Time{}, slog.LevelInfo, "", 0)
	r.AddAttrs(attrs...)
	_ = slog.NewJSONHandler(&buf, nil).Handle(context.Background(), r)
	const head = `{"level":"INFO","msg":""`
	b := bytes.TrimSuffix(buf.Bytes(), []byte("}\n"))
	return bytes.Clone(b[len(head):])
}

// writeAccess writes rec as the line slog.JSONHandler would write for the
// record AccessLog builds (see accesslog.go; TestJSONHandlerMatchesSlog
// keeps the two the same). The line is encoded straight into the lines held
// for batching (see lineWriter), to be written with others within
// batchDelay.
func (h *JSONHandler) writeAccess(rec *accessRecord) error {
	l := h.out
	l.mu.Lock()
	defer l.mu.Unlock()
	held := len(l.pending)
	l.pending = h.appendAccess(l.pending, rec)
	return l.heldLocked(held)
}

func (h *JSONHandler) appendAccess(b []byte, rec *accessRecord) []byte {
	b = append(b, `{"time":"`...)
	b = appendTime(b, rec.time)
	b = append(b, `","level":"`...)
	b = append(b, rec.level.String()...)
	b = append(b, `","msg":"request"`...)
	b = append(b, h.attrs...)
	b = appendString(b, `,"method":`, rec.method)
	b = appendString(b, `,"path":`, rec.path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(rec.status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, int64(rec.bytes), 10)
	b = append(b, `,"duration":`...)
	b = strconv.AppendInt(b, int64(rec.duration), 10)
	b = appendString(b, `,"remote":`, rec.remote)
	b = appendString(b, `,"request_id":`, rec.requestID)
	if rec.aborted {
		b = append(b, `,"aborted":true`...)
	}
	if rec.hijacked {
		b = append(b, `,"hijacked":true`...)
	}
	return append(b, "}\n"...)
}

// lastSecond caches the formatting of the current second: every access
// line starts with its time, and formatting a whole time.Time was a tenth
// of the default chain's in-process cost.
var lastSecond atomic.Pointer[formattedSecond]

type formattedSecond struct {
	unix int64
	loc  *time.Location
	date string // "2006-01-02T15:04:05"
	zone string // "Z" or "-07:00"
}

// appendTime appends t as t.AppendFormat(b, time.RFC3339Nano) does, which is
// how slog.JSONHandler writes a record's time.
func appendTime(b []byte, t time.Time) []byte {
	if y := t.Year(); y < 0 || y > 9999 {
		return t.AppendFormat(b, time.RFC3339Nano)
	}
	f := lastSecond.Load()
	if f == nil || f.unix != t.Unix() || f.loc != t.Location() {
		whole := t.Truncate(time.Second).Format(time.RFC3339)
		f = &formattedSecond{unix: t.Unix(), loc: t.Location(), date: whole[:19], zone: whole[19:]}
		lastSecond.Store(f)
	}
	b = append(b, f.date...)
	if ns := t.Nanosecond(); ns != 0 {
		// Nine digits, trailing zeros dropped, as RFC3339Nano has it.
		var d [10]byte
		d[0] = '.'
		for i := 9; i >= 1; i-- {
			d[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for d[n-1] == '0' {
			n--
		}
		b = append(b, d[:n]...)
	}
	return append(b, f.zone...)
}

// appendString appends key and then s as a JSON string, escaped as slog
// escapes it: no HTML escaping, invalid UTF-8 as U+FFFD, U+2028 and U+2029
// escaped.
func appendString(b []byte, key, s string) []byte {
	b = append(b, key...)
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigit[c>>4], hexDigit[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigit[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

const hexDigit = "0123456789abcdef"

// jsonSafe marks the ASCII bytes a JSON string holds as they are: a table
// lookup a byte, for the paths and addresses of every access line.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// Batching AccessLog's lines: a write(2) per request was, measured on hello
// with two workers appending to one file, more than half of what the default
// chain cost (the two processes contend for the file). Held lines are
// written together, within batchDelay, in writes of at most batchMax bytes,
// or batchMaxFile to a regular file.
const (
	// batchMax is PIPE_BUF on Linux: when stderr is a pipe shared by every
	// process of the cluster (a container runtime, a service manager), a
	// write up to this size is never interleaved with another's.
	batchMax = 4096
	// batchMaxFile: Linux keeps a write to a regular file whole, whatever
	// its size, against other writers of the same open file or of the file
	// opened O_APPEND. Measured with two processes appending 270-byte
	// lines: 0.85us a line in 4 KiB writes, 0.3us in 64 KiB ones.
	batchMaxFile = 64 << 10
	// batchDelay bounds how long a line is held: what a crash (SIGKILL, a
	// runtime fatal error) can lose, and how late tail -f shows a request.
	batchDelay = 5 * time.Millisecond
)

// lineWriter serializes writes to w, so each record reaches w whole, and
// holds AccessLog's lines briefly so that one write carries many. Records
// written with Write go out at once, after the held lines: the order of a
// process's records is kept.
type lineWriter struct {
	mu      sync.Mutex
	w       io.Writer
	max     int // batchMax or batchMaxFile
	pending []byte
	timer   *time.Timer
	armed   bool
}

// Write writes p now, behind any held lines; together, when they fit in one
// batch.
func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pending) > 0 {
		if len(l.pending)+len(p) <= l.max {
			l.pending = append(l.pending, p...)
			return len(p), l.flushLocked()
		}
		if err := l.flushLocked(); err != nil {
			return 0, err
		}
	}
	return l.w.Write(p)
}

// heldLocked makes the lines appended to l.pending after its first held
// bytes (whole lines) wait to be written within batchDelay; or, when adding
// them passed l.max, writes the lines held before them at once.
func (l *lineWriter) heldLocked(held int) error {
	if len(l.pending) <= l.max {
		l.arm()
		return nil
	}
	var err error
	if held > 0 {
		_, err = l.w.Write(l.pending[:held])
		l.pending = l.pending[:copy(l.pending, l.pending[held:])]
	}
	if len(l.pending) <= l.max {
		l.arm()
		return err
	}
	// One line longer than a batch: written alone, and not kept pinned.
	_, werr := l.w.Write(l.pending)
	l.pending = l.pending[:0]
	if cap(l.pending) > 2*l.max {
		l.pending = nil
	}
	return errors.Join(err, werr)
}

// arm starts the timer that writes the held lines, unless it is running.
func (l *lineWriter) arm() {
	if l.armed {
		return
	}
	l.armed = true
	if l.timer == nil {
		l.timer = time.AfterFunc(batchDelay, l.fire)
	} else {
		l.timer.Reset(batchDelay)
	}
}

// batchLimit is how many bytes of lines one write to w may carry and still
// reach w whole: more for a regular file than for a pipe (see batchMaxFile).
func batchLimit(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			return batchMaxFile
		}
	}
	return batchMax
}

func (l *lineWriter) fire() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.armed = false
	_ = l.flushLocked() // nobody to tell; the next write meets the error
}

// Flush writes the held lines now.
func (l *lineWriter) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.flushLocked()
}

func (l *lineWriter) flushLocked() error {
	if len(l.pending) == 0 {
		return nil
	}
	_, err := l.w.Write(l.pending)
	l.pending = l.pending[:0]
	return err
}
