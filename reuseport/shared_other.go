//go:build !linux

package reuseport

import (
	"errors"
	"fmt"
	"os"
	"runtime"
)

// errNoShared is why shared is refused here: without a reuseport filter the
// kernel would hash connections between the shared socket and the slots'
// sockets, which no worker gates.
var errNoShared = fmt.Errorf("balance shared needs reuseport filters (SO_ATTACH_REUSEPORT_CBPF) and the accept queue's depth (TCP_INFO), which %s does not have; use balance hash: %w", runtime.GOOS, errors.ErrUnsupported)

// AttachShared refuses: this platform has no reuseport filters.
func AttachShared(member *os.File, index int) error { return errNoShared }

// SharedAvailable returns why shared cannot work here, wrapping
// errors.ErrUnsupported.
func SharedAvailable() error { return errNoShared }
