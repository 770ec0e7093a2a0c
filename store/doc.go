// Package store is the cluster's shared store: keys with TTLs and atomic
// operations that every process of a brood cluster sees alike.
//
// Workers share no memory, so what an application keeps in memory splits N
// ways: sessions, rate limits, counters, "has this token been used" checks.
// A Store is the one place for them. In a worker, app.App.Store() returns
// it (in a handler: app.FromContext(r.Context()).Store()); in the agent,
// agent.Agent.Store().
//
// By default the store lives in the agent, in an embedded database under
// the data directory (framework.WithDataDir, $BROOD_DATA_DIR), and workers
// reach it through the messenger; with framework.WithStore or $BROOD_STORE
// set to a redis:// URL, the agent keeps it in Redis instead, so that
// several hosts share it. The operations and their errors are the same
// everywhere; package storetest holds the conformance suite every backend
// passes.
//
// # Keys, values, TTLs
//
// A key is a non-empty UTF-8 string of at most MaxKeyLen bytes; a value is
// any byte slice of at most MaxValueLen bytes. A TTL is 0 (no expiry) or
// from MinTTL to MaxTTL; an expired key is never returned, and backends
// remove expired keys in the background so that space stays bounded by
// live data. Anything else is refused before it is sent, with ErrBadKey,
// ErrKeyTooLong, ErrValueTooLarge or ErrBadTTL.
//
// # Versions
//
// Every write gives the key a new version, a number never used before for
// that key (a key deleted and created again does not get an old version
// back). Lookup returns it; CompareAndSet writes only if the key still has
// it, which is how a read-modify-write stays correct when several workers
// do it at once. Version 0 means "absent".
//
// # Counters
//
// Incr treats the value as a decimal int64 ("42"), which is also what Get
// returns for a counter. Incr on a value that is not one fails with
// ErrNotInteger, and one that would overflow with ErrOverflow.
package store
