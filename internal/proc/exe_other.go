//go:build !linux

package proc

// Executable is a binary to start children from. Off Linux it is only a
// path: a rollback after the file was replaced runs whatever is there now.
type Executable struct{ Path string }

// HoldExecutable records path.
func HoldExecutable(path string) (*Executable, error) { return &Executable{Path: path}, nil }

// ExecPath is the path.
func (e *Executable) ExecPath() string { return e.Path }

// Same is always false: without an inode check every reload is new.
func (e *Executable) Same(*Executable) bool { return false }

// Close does nothing.
func (e *Executable) Close() error { return nil }
