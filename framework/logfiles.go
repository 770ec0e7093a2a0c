package framework

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/broodhq/brood/logfile"
	"github.com/broodhq/brood/middleware"
)

// procFiles are the log files one process writes when WithLogDir is set:
// app.log for its slog records, and in workers access.log for the request
// lines. Every process opens them itself (O_APPEND, one write per record), so
// records from different processes never interleave inside a line.
type procFiles struct {
	dir    string
	app    *logfile.File
	access *logfile.File // workers only
	// accessLog writes to access, tagged with the worker's slot and pid.
	accessLog *slog.Logger
}

// openLogs builds this process's root logger. Without a log directory it is
// newLogger's console logger; with one, records go to DIR/app.log as JSON
// lines, and also to WithLogger's logger if one was given. The master's own
// records still go to the console as well: they are few, and they are what a
// terminal or a service manager shows about startup, restarts and stop.
func openLogs(c *config, role string, slot int) (*slog.Logger, error) {
	if c.logs.dir == "" {
		return newLogger(c, role, slot), nil
	}
	if role == "master" {
		if err := os.MkdirAll(c.logs.dir, 0o755); err != nil {
			return nil, fmt.Errorf("create log directory: %w (set WithLogDir or $BROOD_LOG_DIR to a directory brood may write to)", err)
		}
	}
	files := openProcFiles(c, role, slot)
	c.logs.files = files

	opts := &slog.HandlerOptions{Level: c.logLevel}
	handlers := []slog.Handler{logfile.NewJSONHandler(files.app, opts)}
	switch {
	case c.logger != nil:
		handlers = append(handlers, c.logger.Handler())
	case role == "master":
		handlers = append(handlers, consoleHandler(os.Stderr, c.logFormat, c.logLevel))
	}
	var h slog.Handler = handlers[0]
	if len(handlers) > 1 {
		h = slog.NewMultiHandler(handlers...)
	}
	log := tagLogger(slog.New(h), role, slot)
	if files.access != nil {
		// Access lines need no role: only workers write them.
		// middleware.JSONHandler: slog's format, whole lines per write, and
		// AccessLog's cheap, batched path (see handlerFor).
		files.accessLog = slog.New(middleware.NewJSONHandler(files.access, opts)).With("slot", slot, "pid", os.Getpid())
	}
	if role == "master" {
		log.Info("log files", "dir", absDir(c.logs.dir), "dir_from", c.source["log_dir"],
			"max_size", c.logs.maxSize, "keep", c.logs.keep, "compress", c.logs.compress, "daily", c.logs.daily)
	}
	return log, nil
}

// openProcFiles opens this process's log files. Trouble with them never
// stops it: a file that cannot be opened (the directory was deleted and
// cannot be recreated) writes to stderr until it can, and what happens is
// said once on the console logger, not in the files in trouble.
func openProcFiles(c *config, role string, slot int) *procFiles {
	o := logfile.Options{Fallback: os.Stderr, Logger: newLogger(c, role, slot)}
	app := o
	if role == "master" || c.logger != nil {
		app.Fallback = nil // its records reach the console or WithLogger's logger too
	}
	files := &procFiles{dir: c.logs.dir, app: logfile.OpenWith(filepath.Join(c.logs.dir, appLogName), app)}
	if role == "worker" {
		files.access = logfile.OpenWith(filepath.Join(c.logs.dir, accessLogName), o)
	}
	return files
}

// reopen makes this process write to files freshly opened at the paths, so
// that renamed ones receive nothing more once it returns.
func (f *procFiles) reopen() error {
	var errs []error
	for _, lf := range []*logfile.File{f.app, f.access} {
		if lf == nil {
			continue
		}
		if err := lf.Reopen(); err != nil {
			// A closed file writes nothing more: as good as reopened.
			if !errors.Is(err, fs.ErrClosed) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func absDir(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}
