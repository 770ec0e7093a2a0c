package logfile

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"time"
)

// Options make a File opened with [OpenWith] keep working when its path
// gives trouble. Logging trouble must not stop a server, nor go unnoticed:
//
//   - A path that cannot be opened (its directory was deleted and cannot be
//     recreated, the disk is read-only) sends the lines to Fallback instead,
//     until a later check or [File.Reopen] can open it.
//   - Every CheckEvery, a Write looks whether the path still names the
//     file it writes to. When the file or its directory was deleted, it
//     recreates them and writes there, rather than into a file nobody can
//     read; when another file took the path (logrotate without SIGUSR1),
//     it reopens.
//   - A write that fails (a full disk) drops its lines and counts them: the
//     first loss is reported at once, then every ReportEvery while it lasts,
//     and the end of it with the total.
//
// The zero Options drop what cannot be written, reported nowhere.
type Options struct {
	// Fallback receives the lines while the path cannot be opened; nil
	// drops them (counted).
	Fallback io.Writer
	// Logger is told when trouble starts, while it lasts and when it ends.
	// It must not write to this File.
	Logger *slog.Logger
	// CheckEvery is how often the path is checked (default 1s).
	CheckEvery time.Duration
	// ReportEvery is how often lasting losses are reported (default 1min).
	ReportEvery time.Duration
	// Now replaces time.Now, for tests.
	Now func() time.Time
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o *Options) checkEvery() time.Duration {
	if o.CheckEvery > 0 {
		return o.CheckEvery
	}
	return time.Second
}

func (o *Options) reportEvery() time.Duration {
	if o.ReportEvery > 0 {
		return o.ReportEvery
	}
	return time.Minute
}

// OpenWith opens path for appending like [Open], recreating its directory
// (mode 0755) if it is gone. It does not fail: a path it cannot open sends
// the lines to o.Fallback, says so through o.Logger, and is tried again at
// every check.
func OpenWith(path string, o Options) *File {
	f := &File{path: path, opts: o, guarded: true}
	f.health.lastCheck = o.now()
	nf, err := openCreating(path)
	if err != nil {
		f.fallBack(err).log(o.Logger)
		return f
	}
	f.f = nf
	return f
}

// health is what a guarded File knows about its trouble. f.mu guards it.
type health struct {
	lastCheck  time.Time
	openErr    error     // why the path cannot be opened; f.f is nil meanwhile
	writeErr   error     // why the last write failed; nil once one succeeds
	since      time.Time // when the trouble began
	diverted   uint64    // lines sent to the fallback since openErr
	lost       uint64    // lines dropped since the trouble began
	unreported uint64    // of those, lines not yet reported
	lastReport time.Time
}

// report is what a File says about its trouble, logged once f.mu is
// released: the logger may be slow, or write to a file that shares a disk.
type report []reportEntry

type reportEntry struct {
	level slog.Level
	msg   string
	args  []any
}

func (r *report) add(level slog.Level, msg string, args ...any) {
	*r = append(*r, reportEntry{level, msg, args})
}

func (r report) log(l *slog.Logger) {
	if l == nil {
		return
	}
	for _, e := range r {
		l.Log(context.Background(), e.level, e.msg, e.args...)
	}
}

func lines(p []byte) uint64 {
	if n := bytes.Count(p, []byte{'\n'}); n > 0 {
		return uint64(n)
	}
	return 1
}

// writeGuarded is Write for a File opened with OpenWith; f.mu is held.
func (f *File) writeGuarded(p []byte) (int, error, report) {
	var r report
	now := f.opts.now()
	if now.Sub(f.health.lastCheck) >= f.opts.checkEvery() {
		f.health.lastCheck = now
		r = f.checkPath()
	}
	h := &f.health
	if f.f == nil {
		if fb := f.opts.Fallback; fb != nil {
			if _, err := fb.Write(p); err == nil {
				h.diverted += lines(p)
				return len(p), nil, r
			}
		}
		f.dropped(p, now, h.openErr, &r)
		return len(p), nil, r
	}
	n, err := f.f.Write(p)
	if err != nil {
		f.dropped(p, now, err, &r)
		return n, err, r
	}
	if h.writeErr != nil {
		r.add(slog.LevelWarn, "log file writable again", "path", f.path, "lost_lines", h.lost,
			"lost_for", now.Sub(h.since).Round(time.Millisecond).String(), "err_was", h.writeErr.Error())
		*h = health{lastCheck: h.lastCheck}
	}
	return n, nil, r
}

// dropped counts p's lines as lost, reporting the first loss at once and
// then every ReportEvery.
func (f *File) dropped(p []byte, now time.Time, cause error, r *report) {
	h := &f.health
	n := lines(p)
	h.lost += n
	h.unreported += n
	switch {
	case f.f != nil && h.writeErr == nil:
		h.writeErr, h.since, h.lastReport = cause, now, now
		r.add(slog.LevelError, "cannot write to the log file; dropping its lines, counted until it works again",
			"path", f.path, "err", cause.Error())
		h.unreported = 0
	case now.Sub(h.lastReport) >= f.opts.reportEvery():
		r.add(slog.LevelError, "log lines dropped", "path", f.path, "lines", h.unreported,
			"lost_lines", h.lost, "since", h.since.UTC().Format(time.RFC3339), "err", cause.Error())
		h.unreported, h.lastReport = 0, now
	}
	if f.f != nil {
		h.writeErr = cause
	}
}

// checkPath reopens the path when it no longer names the file written to,
// recreating what was deleted, and leaves the fallback once it can; f.mu
// is held.
func (f *File) checkPath() report {
	var r report
	if f.f != nil {
		st, err := os.Stat(f.path)
		if fst, ferr := f.f.Stat(); err == nil && ferr == nil && os.SameFile(st, fst) {
			return nil
		}
		gone := err != nil
		nf, err := openCreating(f.path)
		if err != nil {
			f.f.Close()
			f.f = nil
			return f.fallBack(err)
		}
		f.f.Close()
		f.f = nf
		if gone {
			r.add(slog.LevelWarn, "log file was deleted; recreated it", "path", f.path)
		}
		return r
	}
	nf, err := openCreating(f.path)
	if err != nil {
		return nil
	}
	f.f = nf
	return f.health.reopened(f)
}

// fallBack starts writing to the fallback because the path cannot be
// opened; f.f is nil.
func (f *File) fallBack(err error) report {
	var r report
	h := &f.health
	h.openErr, h.since, h.lastReport, h.diverted = err, f.opts.now(), f.opts.now(), 0
	where := "dropping its lines, counted"
	switch f.opts.Fallback {
	case nil:
	case os.Stderr:
		where = "writing its lines to stderr instead"
	default:
		where = "writing its lines to the fallback instead"
	}
	r.add(slog.LevelError, "cannot open the log file; "+where+" until it can be opened again", "path", f.path, "err", err.Error())
	return r
}

// reopened notes that f.f is a freshly opened file: a fallback ends.
func (h *health) reopened(f *File) report {
	var r report
	if h.openErr != nil {
		r.add(slog.LevelWarn, "log file open again", "path", f.path, "lines_to_stderr", h.diverted,
			"lost_lines", h.lost, "err_was", h.openErr.Error())
		*h = health{lastCheck: h.lastCheck}
	}
	return r
}
