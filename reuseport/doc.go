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
//
// # Balancing
//
// By default the kernel picks a group's socket for each new connection by a
// hash of the connection's addresses and ports: even on average, but a
// client's connections land anywhere. Group.EnableSticky attaches a classic
// BPF program (SO_ATTACH_REUSEPORT_CBPF) that hashes only the client's
// source address into one of 256 buckets and looks the bucket up in a Table,
// so every connection of an address reaches the same slot, with no process
// on the data path. The Table names slots, not sockets' indices in the
// kernel's group, which shift as sockets close; Group tracks the indices and
// re-attaches the program whenever its sockets change. A worker's crash or
// a rolling reload changes nothing, as the slot keeps its socket; adding a
// slot moves Buckets/(n+1) buckets to it and removing one hands its buckets
// to the others, so about 1/n of the clients move.
//
// Sticky by address means what the address is: behind a reverse proxy every
// connection comes from the proxy and reaches one slot, and the clients
// behind one NAT share a slot. Where the proxy is in front, let it do the
// stickiness (nginx: hash $remote_addr consistent) or keep sessions in the
// cluster's shared store so that any worker can serve any client.
//
// Group.EnableShared is the load-aware alternative: it binds one more
// socket, the shared one, and attaches a program that returns its index,
// so every new connection waits in one accept queue that every worker
// serves and whichever worker is free takes it. The slots' sockets stay
// bound (they take connections only in the instant a Remove moves the
// shared socket's index, and their workers serve those), so everything the
// master does with them works as in the other modes.
//
// QueueDepth reads how many connections wait in a socket's accept queue.
// Only Linux has reuseport filters and reports the queue: elsewhere
// EnableSticky, EnableShared and QueueDepth return errors wrapping
// errors.ErrUnsupported, so sticky and shared are refused instead of
// silently hashing.
package reuseport
