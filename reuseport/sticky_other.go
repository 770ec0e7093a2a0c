//go:build !linux

package reuseport

import (
	"errors"
	"fmt"
	"os"
	"runtime"
)

// errNoFilters is why sticky is refused here: only Linux runs a program
// that picks a reuseport group's socket (SO_ATTACH_REUSEPORT_CBPF).
var errNoFilters = fmt.Errorf("balance sticky needs reuseport filters (SO_ATTACH_REUSEPORT_CBPF), which %s does not have; use balance hash: %w", runtime.GOOS, errors.ErrUnsupported)

// AttachSticky refuses: this platform has no reuseport filters, and hashing
// silently instead of keeping clients on one slot would break what sticky
// promises.
func AttachSticky(member *os.File, t *Table, order []int) error {
	if _, err := Program(t, order); err != nil {
		return err
	}
	return errNoFilters
}

// DetachSticky refuses: nothing can be attached here.
func DetachSticky(member *os.File) error { return errNoFilters }

// QueueDepth refuses: this platform's listeners do not report their accept
// queue through TCP_INFO.
func QueueDepth(f *os.File) (queued, backlog int, err error) {
	return 0, 0, fmt.Errorf("accept queue depth on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}

// stopListening has nothing to do where no program depends on the group's
// indices.
func stopListening(f *os.File) error { return nil }

// StickyAvailable returns why sticky cannot work here, wrapping
// errors.ErrUnsupported, so a configuration asking for it is refused before
// anything starts.
func StickyAvailable() error { return errNoFilters }
