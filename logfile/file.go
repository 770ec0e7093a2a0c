package logfile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// File is a log file opened for appending that several processes may share.
// Its methods are safe for concurrent use.
//
// Each Write is one write(2) of the whole buffer to a descriptor opened with
// O_APPEND, so a caller that passes complete lines gets complete lines in the
// file, whatever the other processes do. File does not buffer: a write costs
// about one system call (see BenchmarkWrite), and an unbuffered file loses
// nothing when a process dies.
//
// A File opened with [OpenWith] also survives trouble with its path; see
// [Options].
type File struct {
	path string
	opts Options // OpenWith's

	// mu is held for the whole of each write so that Reopen, once it has the
	// lock, knows no write is still going into the old descriptor.
	mu      sync.Mutex
	f       *os.File // nil while closed, or while writing to the fallback
	closed  bool
	guarded bool   // opened by OpenWith
	health  health // OpenWith's files only: trouble.go
}

// Open opens path for appending, creating it with mode 0644 if needed. The
// directory must exist.
func Open(path string) (*File, error) {
	f, err := openAppend(path)
	if err != nil {
		return nil, fmt.Errorf("open log file: %w", err)
	}
	return &File{path: path, f: f}, nil
}

func openAppend(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
}

// openCreating is openAppend that first recreates a missing directory.
func openCreating(path string) (*os.File, error) {
	f, err := openAppend(path)
	if err == nil || !os.IsNotExist(err) {
		return f, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return openAppend(path)
}

// Path returns the path the file was opened with.
func (f *File) Path() string { return f.path }

// Write appends p with one write(2). Pass one or more complete lines: the
// kernel keeps one write together, but nothing keeps two writes together.
func (f *File) Write(p []byte) (int, error) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return 0, &fs.PathError{Op: "write", Path: f.path, Err: fs.ErrClosed}
	}
	if !f.guarded {
		defer f.mu.Unlock()
		return f.f.Write(p)
	}
	n, err, report := f.writeGuarded(p)
	f.mu.Unlock()
	report.log(f.opts.Logger)
	return n, err
}

// Reopen opens the path anew, creating it, and makes every later Write go to
// the new file. A Write already under way finishes into the old file before
// Reopen swaps, so when Reopen returns this process will never write to the
// old file again: that is what makes it safe for the rotator to compress it.
//
// If the path cannot be opened, the old file stays in use (nothing is lost)
// and Reopen returns the error.
func (f *File) Reopen() error {
	// Open before taking the lock so writers never wait on the file system's
	// open path, only on the swap.
	open := openAppend
	if f.guarded {
		open = openCreating
	}
	nf, err := open(f.path)
	if err != nil {
		return fmt.Errorf("reopen log file: %w", err)
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		nf.Close()
		return fmt.Errorf("reopen log file: %w", &fs.PathError{Op: "reopen", Path: f.path, Err: fs.ErrClosed})
	}
	old := f.f
	f.f = nf
	report := f.health.reopened(f)
	f.mu.Unlock()
	report.log(f.opts.Logger)
	if old != nil {
		if err := old.Close(); err != nil {
			return fmt.Errorf("reopen log file: close old: %w", err)
		}
	}
	return nil
}

// Close closes the file. Later writes fail with an error wrapping
// fs.ErrClosed. Closing twice is not an error.
func (f *File) Close() error {
	f.mu.Lock()
	old := f.f
	f.f = nil
	f.closed = true
	f.mu.Unlock()
	if old == nil {
		return nil
	}
	if err := old.Close(); err != nil {
		return fmt.Errorf("close log file: %w", err)
	}
	return nil
}

var _ io.Writer = (*File)(nil)
