//go:build !unix

package reuseport

import (
	"net"
	"os"
)

// slotFile returns a new descriptor of ln's socket as a file.
func slotFile(ln *net.TCPListener, name string) (*os.File, error) { return ln.File() }
