package framework

import (
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/lmittmann/tint"
	"golang.org/x/term"

	"github.com/broodhq/brood/middleware"
)

// newLogger builds the one root logger of a process. Every record carries the
// role and the pid, and in workers the slot, so that the interleaved output
// of the whole cluster can be told apart.
func newLogger(c *config, role string, slot int) *slog.Logger {
	l := c.logger
	if l == nil {
		l = slog.New(consoleHandler(os.Stderr, c.logFormat, c.logLevel))
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

func consoleHandler(w *os.File, format string, level slog.Level) slog.Handler {
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
	// a fraction of the cost per request. flushLogs writes what it holds.
	return middleware.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
}

// flushLogs writes the access lines that middleware.JSONHandler holds for a
// few milliseconds to batch them, so that a stopping worker's last requests
// are in the log.
func flushLogs(c *config, log *slog.Logger) {
	loggers := []*slog.Logger{log}
	if f := c.logs.files; f != nil && f.accessLog != nil {
		loggers = append(loggers, f.accessLog)
	}
	for _, l := range loggers {
		if f, ok := l.Handler().(interface{ Flush() error }); ok {
			_ = f.Flush()
		}
	}
}
