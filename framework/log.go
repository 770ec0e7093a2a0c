package framework

import (
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/lmittmann/tint"
	"golang.org/x/term"
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
	return slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
}
