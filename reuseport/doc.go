// Package reuseport binds and keeps the SO_REUSEPORT sockets that brood's
// worker slots serve on.
//
// The master binds one socket per worker slot and keeps it open for its whole
// life, passing it to each worker that serves the slot. Closing a SO_REUSEPORT
// socket makes Linux reset every connection waiting in its accept queue, so a
// socket that outlives its worker is what lets a crashed or reloaded worker be
// replaced without dropping queued connections (nginx does the same).
//
// The sockets are plain TCP, not Multipath TCP (Go's default for listeners
// since 1.24): the kernel refuses socket filters on MPTCP sockets, and the
// reuseport CBPF program that steers connections away from a slot being
// retired needs one. Setting the socket options is left to
// github.com/libp2p/go-reuseport.
//
// Before binding a group, Bind checks that no other socket holds the address:
// SO_REUSEPORT would otherwise let a second brood (or any program of the same
// user that set the option) share the port silently, and the kernel would
// split traffic between two unrelated applications.
//
// # Why it is public
//
// brood's master is its main user, but [Listen] and [Claim] are useful to an
// application on their own: a worker that serves a second port of its own
// (a gRPC or admin listener every worker opens) gets a SO_REUSEPORT socket
// with the same no-stranger check, so that the kernel spreads that port's
// connections across the workers too. [Group] is the master's per-slot set
// and is exported for that one importer.
package reuseport
