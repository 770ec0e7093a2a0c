package proclog

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

// Names of the files in the log directory.
const (
	AppLogName    = "app.log"
	AccessLogName = "access.log"
)

// Process is a process's logging: its root logger and, with a log
// directory, its open files.
type Process struct {
	Log   *slog.Logger
	Files *Files // nil without a log directory
}

// Files are the log files one process writes when WithLogDir is set:
// app.log for its slog records, and in workers access.log for the request
// lines. Every process opens them itself (O_APPEND, one write per record), so
// records from different processes never interleave inside a line.
type Files struct {
	dir    string
	app    *logfile.File
	access *logfile.File // workers only
	// AccessLog writes to access.log, tagged with the worker's slot and pid.
	AccessLog *slog.Logger
}

// Open builds this process's root logger. Without a log directory it is
// New's console logger; with one, records go to DIR/app.log as JSON lines,
// and also to WithLogger's logger if one was given. The master's own records
// still go to the console as well: they are few, and they are what a
// terminal or a service manager shows about startup, restarts and stop.
func Open(s Settings, role string, slot int) (*Process, error) {
	if s.Dir == "" {
		return &Process{Log: New(s, role, slot)}, nil
	}
	if role == "master" {
		if err := os.MkdirAll(s.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("create log directory: %w (set WithLogDir or $BROOD_LOG_DIR to a directory brood may write to)", err)
		}
	}
	files := openFiles(s, role, slot)

	opts := &slog.HandlerOptions{Level: s.Level}
	handlers := []slog.Handler{logfile.NewJSONHandler(files.app, opts)}
	switch {
	case s.Logger != nil:
		handlers = append(handlers, s.Logger.Handler())
	case role == "master":
		handlers = append(handlers, ConsoleHandler(os.Stderr, s.Format, s.Level))
	}
	var h slog.Handler = handlers[0]
	if len(handlers) > 1 {
		h = multiHandler(handlers)
	}
	log := tagLogger(slog.New(h), role, slot)
	if files.access != nil {
		// Access lines need no role: only workers write them.
		// middleware.JSONHandler: slog's format, whole lines per write, and
		// AccessLog's cheap, batched path (see handlerFor).
		files.AccessLog = slog.New(middleware.NewJSONHandler(files.access, opts)).With("slot", slot, "pid", os.Getpid())
	}
	if role == "master" {
		log.Info("log files", "dir", absDir(s.Dir), "dir_from", s.DirFrom,
			"max_size", s.MaxSize, "keep", s.Keep, "compress", s.Compress, "daily", s.Daily)
	}
	return &Process{Log: log, Files: files}, nil
}

// openFiles opens this process's log files. Trouble with them never
// stops it: a file that cannot be opened (the directory was deleted and
// cannot be recreated) writes to stderr until it can, and what happens is
// said once on the console logger, not in the files in trouble.
func openFiles(s Settings, role string, slot int) *Files {
	o := logfile.Options{Fallback: os.Stderr, Logger: New(s, role, slot)}
	app := o
	if role == "master" || s.Logger != nil {
		app.Fallback = nil // its records reach the console or WithLogger's logger too
	}
	files := &Files{dir: s.Dir, app: logfile.OpenWith(filepath.Join(s.Dir, AppLogName), app)}
	if role == "worker" {
		files.access = logfile.OpenWith(filepath.Join(s.Dir, AccessLogName), o)
	}
	return files
}

// Reopen makes this process write to files freshly opened at the paths, so
// that renamed ones receive nothing more once it returns.
func (f *Files) Reopen() error {
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

// Reopener is p's Files.Reopen, or nil when it writes no files.
func (p *Process) Reopener() func() error {
	if p.Files == nil {
		return nil
	}
	return p.Files.Reopen
}

// AccessLogger is where the default chain writes access lines: access.log
// with log files, else the process's logger.
func (p *Process) AccessLogger() *slog.Logger {
	if p.Files != nil && p.Files.AccessLog != nil {
		return p.Files.AccessLog
	}
	return p.Log
}

func absDir(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}
