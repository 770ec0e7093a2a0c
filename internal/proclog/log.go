package proclog

import (
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/lmittmann/tint"
	"golang.org/x/term"

	"github.com/broodhq/brood/middleware"
)

// Settings is how a process logs, resolved from the options once.
type Settings struct {
	Logger *slog.Logger // WithLogger; nil: the console
	Format string       // auto, text or json
	Level  slog.Level

	// Files, when Dir is set.
	Dir      string
	DirFrom  string // where Dir came from, for the master's "log files" line
	MaxSize  int64
	Keep     int
	Compress bool
	Daily    bool
}

// Console is the logger of a process that has no configuration yet (an
// option was refused): the console, in the format auto picks.
func Console() *slog.Logger { return slog.New(ConsoleHandler(os.Stderr, "auto", slog.LevelInfo)) }

// New builds the one root logger of a process without log files. Every
// record carries the role and the pid, and in workers the slot, so that the
// interleaved output of the whole cluster can be told apart.
func New(s Settings, role string, slot int) *slog.Logger {
	l := s.Logger
	if l == nil {
		l = slog.New(ConsoleHandler(os.Stderr, s.Format, s.Level))
	}
	return tagLogger(l, role, slot)
}

// tagLogger adds the attributes every record of a process carries.
func tagLogger(l *slog.Logger, role string, slot int) *slog.Logger {
	attrs := []any{"role", role}
	if slot > 0 {
		attrs = append(attrs, "slot", slot)
	}
	attrs = append(attrs, "pid", os.Getpid())
	return l.With(attrs...)
}

// ConsoleHandler writes to w in format; auto picks text at a terminal and
// JSON otherwise.
func ConsoleHandler(w *os.File, format string, level slog.Level) slog.Handler {
	if format == "auto" {
		format = "json"
		if term.IsTerminal(int(w.Fd())) {
			format = "text"
		}
	}
	return handlerFor(w, format, level)
}

func handlerFor(w io.Writer, format string, level slog.Level) slog.Handler {
	if format == "text" {
		return tint.NewHandler(w, &tint.Options{Level: level, TimeFormat: time.TimeOnly + ".000"})
	}
	// middleware.JSONHandler writes what slog.JSONHandler writes, but lets
	// AccessLog encode its records itself and batches them into few writes:
	// a fraction of the cost per request. Flush writes what it holds.
	return middleware.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
}

// Flush writes the access lines that middleware.JSONHandler holds for a
// few milliseconds to batch them, so that a stopping worker's last requests
// are in the log.
func (p *Process) Flush() {
	loggers := []*slog.Logger{p.Log}
	if f := p.Files; f != nil && f.AccessLog != nil {
		loggers = append(loggers, f.AccessLog)
	}
	for _, l := range loggers {
		if f, ok := l.Handler().(interface{ Flush() error }); ok {
			_ = f.Flush()
		}
	}
}
