package reuseport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
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
//
// A group balances by the kernel's hash of the connection's 4-tuple until
// EnableSticky; from then on it keeps a sticky Table and re-attaches its
// program whenever Add or Remove changes the sockets, so the master only
// enables it once, after Bind.
type Group struct {
	addr *net.TCPAddr

	mu    sync.Mutex
	files map[int]*os.File
	// order is the slots in the kernel's index order of the reuseport
	// group, the indices a reuseport program returns. A socket joins at the
	// end when it starts listening; when one leaves, the kernel moves the
	// last socket into its place (__reuseport_detach_sock in
	// net/core/sock_reuseport.c), and Remove does the same here.
	order  []int
	sticky *Table // nil: the kernel's hash
	shared bool   // every connection to the socket of SharedSlot
}

// SharedSlot is the key of the group's shared socket (EnableShared) among
// its slots' sockets: File(SharedSlot) returns it.
const SharedSlot = 0

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

// Add binds the socket for slot, or returns the one it already has. The
// socket joins the end of the kernel's group. With sticky on, the slot takes
// its share of the buckets from the fullest slots and the program is
// re-attached; if that fails, the socket is closed again.
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
	g.order = append(g.order, slot)
	if g.sticky != nil {
		g.sticky.Add(slot)
		if err := g.attachLocked(); err != nil {
			g.sticky.Remove(slot)
			g.removeLocked(slot)
			return nil, fmt.Errorf("bind slot %d: %w", slot, err)
		}
	}
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
//
// The socket leaves the reuseport group at once, even if a worker still
// holds a descriptor of it, so the group's indices stay known. With sticky
// on, the program is first re-attached without the slot's buckets, which go
// to the slots holding the fewest; then again with the new indices. Between
// the two, the clients of the socket that moves into the freed index are
// hashed by the kernel: served, but not steered, for that instant.
func (g *Group) Remove(slot int) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.files[slot]; !ok {
		return nil
	}
	var errs []error
	if g.sticky != nil && g.sticky.Has(slot) && len(g.files) > 1 {
		g.sticky.Remove(slot)
		errs = append(errs, g.attachLocked())
	}
	errs = append(errs, g.removeLocked(slot))
	if g.sticky != nil && len(g.files) > 0 {
		errs = append(errs, g.attachLocked())
	}
	// The shared socket may have moved into the freed index. Until the
	// program says so, connections that its old index misses are hashed
	// onto the slots' sockets, whose workers serve them too.
	if _, ok := g.files[SharedSlot]; g.shared && ok {
		errs = append(errs, g.attachLocked())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove slot %d: %w", slot, err)
	}
	return nil
}

func (g *Group) removeLocked(slot int) error {
	f := g.files[slot]
	delete(g.files, slot)
	i := slices.Index(g.order, slot)
	last := len(g.order) - 1
	g.order[i] = g.order[last]
	g.order = g.order[:last]
	if g.sticky != nil && g.sticky.Has(slot) {
		g.sticky.Remove(slot) // its last socket: the table is emptied
	}
	return errors.Join(stopListening(f), f.Close())
}

// EnableSticky makes the group steer each client address to one slot (see
// Table) from now on, through every Add and Remove, and returns an error
// wrapping errors.ErrUnsupported on a platform without reuseport filters.
func (g *Group) EnableSticky() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.files) == 0 {
		return errors.New("enable sticky: the group has no socket")
	}
	g.sticky = NewTable(g.order...)
	if err := g.attachLocked(); err != nil {
		g.sticky = nil
		return fmt.Errorf("enable sticky: %w", err)
	}
	return nil
}

// Sticky returns a copy of the group's table, or nil when the group hashes.
func (g *Group) Sticky() *Table {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sticky == nil {
		return nil
	}
	return g.sticky.Clone()
}

// Order returns the group's slots in the kernel's index order.
func (g *Group) Order() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.order)
}

// QueueDepth returns the accept queue length and backlog of slot's socket
// (see the function QueueDepth).
func (g *Group) QueueDepth(slot int) (queued, backlog int, err error) {
	f := g.File(slot)
	if f == nil {
		return 0, 0, fmt.Errorf("accept queue depth: slot %d has no socket", slot)
	}
	return QueueDepth(f)
}

// EnableShared binds one more socket, the shared one (File(SharedSlot)),
// and attaches a program that gives it every new connection from now on,
// through every Add and Remove: one accept queue that every worker serves,
// so that whichever is free takes the next connection. The slots' sockets
// stay bound, and take connections only in the instant a Remove moves the
// shared socket's index, so the master's hand-over of slot sockets works
// unchanged. It returns an error wrapping errors.ErrUnsupported on a
// platform without reuseport filters.
func (g *Group) EnableShared(ctx context.Context) error {
	if g.Sticky() != nil {
		return errors.New("enable shared: the group is sticky")
	}
	if _, err := g.Add(ctx, SharedSlot); err != nil {
		return fmt.Errorf("enable shared: %w", err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.shared = true
	if err := g.attachLocked(); err != nil {
		g.shared = false
		return errors.Join(fmt.Errorf("enable shared: %w", err), g.removeLocked(SharedSlot))
	}
	return nil
}

func (g *Group) attachLocked() error {
	if g.shared {
		return AttachShared(g.files[g.order[0]], slices.Index(g.order, SharedSlot))
	}
	return AttachSticky(g.files[g.order[0]], g.sticky, g.order)
}

// Close closes every socket of the group.
func (g *Group) Close() error {
	g.mu.Lock()
	files := g.files
	g.files = map[int]*os.File{}
	g.order = nil
	if g.sticky != nil {
		g.sticky = NewTable()
	}
	g.mu.Unlock()
	var errs []error
	for _, f := range files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}
