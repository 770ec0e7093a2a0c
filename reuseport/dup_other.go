//go:build !unix

package reuseport

import (
	"net"
	"os"
)

// fileOf returns a duplicate of ln's socket. Only Unix systems start
// workers that share it, so the blocking mode File.Fd sets does not matter.
func fileOf(ln *net.TCPListener, _ string) (*os.File, error) { return ln.File() }
