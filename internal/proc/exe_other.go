//go:build !linux

package proc

import "os"

// Executable is a binary to start children from. Off Linux it is only a
// path: a rollback after the file was replaced runs whatever is there now.
type Executable struct{ Path string }

// HoldExecutable records path.
func HoldExecutable(path string) (*Executable, error) { return &Executable{Path: path}, nil }

// Replaced is always false: there is no descriptor to exec through.
func (e *Executable) Replaced() bool { return false }

// File is nil.
func (e *Executable) File() *os.File { return nil }

// Close does nothing.
func (e *Executable) Close() error { return nil }
