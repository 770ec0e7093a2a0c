package reuseport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"

	goreuseport "github.com/libp2p/go-reuseport"
)

// ErrAddrInUse means another socket already holds the address.
var ErrAddrInUse = errors.New("address already in use")

// Listen binds one plain-TCP SO_REUSEPORT listener.
func Listen(ctx context.Context, addr string) (*net.TCPListener, error) {
	lc := net.ListenConfig{Control: goreuseport.Control}
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, explain(addr, err)
	}
	return ln.(*net.TCPListener), nil
}

// Claim checks that addr is free by binding it without SO_REUSEPORT, and
// returns the address actually bound (with the port the kernel chose when
// addr asked for port 0).
func Claim(ctx context.Context, addr string) (*net.TCPAddr, error) {
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, explain(addr, err)
	}
	a := ln.Addr().(*net.TCPAddr)
	if err := ln.Close(); err != nil {
		return nil, fmt.Errorf("release probe for %s: %w", addr, err)
	}
	return a, nil
}

func explain(addr string, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("listen on %s: %w by another process: stop it or choose another address", addr, ErrAddrInUse)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("listen on %s: permission denied: ports below 1024 need privileges (CAP_NET_BIND_SERVICE); choose a port of 1024 or more: %w", addr, err)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("listen on %s: no interface on this machine has that address: %w", addr, err)
	}
	return fmt.Errorf("listen on %s: %w", addr, err)
}

// Group is the set of sockets of one address, one per worker slot. Slots are
// numbered from 1. Its methods are safe for concurrent use.
type Group struct {
	addr *net.TCPAddr

	mu    sync.Mutex
	files map[int]*os.File
}

// Bind claims addr and binds n sockets on it, one per slot 1..n.
func Bind(ctx context.Context, addr string, n int) (*Group, error) {
	a, err := Claim(ctx, addr)
	if err != nil {
		return nil, err
	}
	g := &Group{addr: a, files: make(map[int]*os.File, n)}
	for slot := 1; slot <= n; slot++ {
		if _, err := g.Add(ctx, slot); err != nil {
			g.Close()
			return nil, err
		}
	}
	return g, nil
}

// Addr is the address every socket of the group is bound to.
func (g *Group) Addr() *net.TCPAddr { return g.addr }

// Add binds the socket for slot, or returns the one it already has.
func (g *Group) Add(ctx context.Context, slot int) (*os.File, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f, ok := g.files[slot]; ok {
		return f, nil
	}
	ln, err := Listen(ctx, g.addr.String())
	if err != nil {
		return nil, fmt.Errorf("bind slot %d: %w", slot, err)
	}
	// The file is a duplicate descriptor of the same socket: closing the
	// listener leaves the socket open, held by the file alone.
	f, err := fileOf(ln, fmt.Sprintf("brood-socket-%d", slot))
	ln.Close()
	if err != nil {
		return nil, fmt.Errorf("bind slot %d: %w", slot, err)
	}
	g.files[slot] = f
	return f, nil
}

// File returns the socket of slot, or nil. Its Fd method (which os/exec
// calls on ExtraFiles) leaves the socket non-blocking for every process
// that shares it.
func (g *Group) File(slot int) *os.File {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.files[slot]
}

// Remove closes the socket of slot. Connections still queued on it are reset
// by the kernel, so callers drain it first.
func (g *Group) Remove(slot int) error {
	g.mu.Lock()
	f := g.files[slot]
	delete(g.files, slot)
	g.mu.Unlock()
	if f == nil {
		return nil
	}
	return f.Close()
}

// Close closes every socket of the group.
func (g *Group) Close() error {
	g.mu.Lock()
	files := g.files
	g.files = map[int]*os.File{}
	g.mu.Unlock()
	var errs []error
	for _, f := range files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}
