package pidfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// ErrRunning means the pid file names another live process.
var ErrRunning = errors.New("another instance is running")

// PIDFile is a pid file written by this process.
type PIDFile struct {
	Path string
	PID  int

	// Stale, when not empty, says what Write replaced: a note for the log.
	// StalePID is the pid the replaced file held, 0 if it held none.
	Stale    string
	StalePID int
}

// Write writes the current pid to path, mode 0644, unless path names
// another live process.
func Write(path string) (*PIDFile, error) {
	if path == "" {
		return nil, errors.New("pid file: empty path")
	}
	me := os.Getpid()
	tmp, err := writeTemp(path, me)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp)

	f := &PIDFile{Path: path, PID: me}
	// link, unlike rename, fails when the name exists, so of two masters
	// starting at once only one writes the file unchallenged.
	err = os.Link(tmp, path)
	if err == nil {
		return f, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		// No hard links on this filesystem: check, then rename.
		if _, statErr := os.Lstat(path); errors.Is(statErr, fs.ErrNotExist) {
			return f, replace(tmp, path)
		}
	}
	if err := f.checkExisting(); err != nil {
		return nil, err
	}
	return f, replace(tmp, path)
}

func replace(tmp, path string) error {
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("pid file %s: %w", path, err)
	}
	return nil
}

// checkExisting refuses a file naming a live process other than us and
// records why any other file may be replaced.
func (f *PIDFile) checkExisting() error {
	pid, err := read(f.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist): // removed since we looked
		return nil
	case errors.Is(err, errGarbage):
		f.Stale = fmt.Sprintf("replaced pid file %s: %v", f.Path, err)
		return nil
	case err != nil:
		return fmt.Errorf("pid file: %w", err)
	case pid == f.PID:
		return nil
	case alive(pid):
		return fmt.Errorf("pid file %s names pid %d, which is running: %w; stop it, or remove %s if pid %d is not brood",
			f.Path, pid, ErrRunning, f.Path, pid)
	}
	f.Stale = fmt.Sprintf("replaced stale pid file %s: pid %d is not running", f.Path, pid)
	f.StalePID = pid
	return nil
}

// Remove deletes the pid file if it still holds our pid. It is safe to call
// more than once.
func (f *PIDFile) Remove() error {
	pid, err := read(f.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case errors.Is(err, errGarbage):
		return fmt.Errorf("pid file %s no longer holds our pid (%v); left it in place", f.Path, err)
	case err != nil:
		return fmt.Errorf("pid file: %w", err)
	case pid != f.PID:
		return fmt.Errorf("pid file %s now names pid %d, not ours (%d); left it in place", f.Path, pid, f.PID)
	}
	if err := os.Remove(f.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("pid file: %w", err)
	}
	return nil
}

var errGarbage = errors.New("not a pid")

// read parses a pid file: a positive decimal number, optionally surrounded
// by whitespace (other tools add a newline, or none).
func read(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	if len(b) > 64 {
		return 0, fmt.Errorf("%d bytes: %w", len(b), errGarbage)
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("contents %q: %w", b, errGarbage)
	}
	return pid, nil
}

func writeTemp(path string, pid int) (string, error) {
	dir := filepath.Dir(path)
	t, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("pid file %s: directory %s does not exist; create it or choose another path", path, dir)
	}
	if err != nil {
		return "", fmt.Errorf("pid file %s: %w", path, err)
	}
	_, err = t.WriteString(strconv.Itoa(pid) + "\n")
	if err == nil {
		err = t.Chmod(0o644) // CreateTemp makes 0600; others read pid files
	}
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(t.Name())
		return "", fmt.Errorf("pid file %s: %w", path, err)
	}
	return t.Name(), nil
}
