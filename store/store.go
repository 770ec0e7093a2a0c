package store

import (
	"context"
	"time"
)

// Store is shared by every process of the cluster. Keys are non-empty
// strings; a value is any byte slice up to MaxValueLen. Every method is safe
// for concurrent use, and every write is atomic: a concurrent reader sees
// the old value or the new one, never a mix.
type Store interface {
	// Get returns the value of key; found is false if it is absent or
	// expired.
	Get(ctx context.Context, key string) (value []byte, found bool, err error)
	// Set stores value under key, replacing what was there. ttl 0: no
	// expiry.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Delete removes key; deleting an absent key is not an error.
	Delete(ctx context.Context, key string) error
	// Incr adds delta to the integer stored under key and returns the sum,
	// atomically; an absent key counts as 0. ttl applies when Incr creates
	// the key (0: no expiry); an existing key keeps its expiry.
	Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error)

	// SetIfAbsent stores value under key only if key is absent (or
	// expired), and reports whether it did.
	SetIfAbsent(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// Lookup is Get with the key's version and expiry.
	Lookup(ctx context.Context, key string) (item Item, found bool, err error)
	// CompareAndSet stores value under key only if the key's version is
	// still version (from Lookup; 0: the key must be absent), and reports
	// whether it did. ttl replaces the key's expiry (0: none).
	CompareAndSet(ctx context.Context, key string, value []byte, version uint64, ttl time.Duration) (bool, error)
	// List returns the live keys that start with prefix and sort after
	// after ("" to start), in byte order, with their values: at most limit
	// of them (1 to MaxListLimit), and possibly fewer before the end (a
	// page is also bounded in bytes). To read them all, call again with
	// after set to the last key returned until a page comes back empty.
	List(ctx context.Context, prefix, after string, limit int) ([]Item, error)

	// Close releases what the store holds; calls after it fail with
	// ErrClosed, and a second Close does nothing. The store the framework
	// hands out is the framework's to close.
	Close() error
}

// Item is a key as Lookup and List return it.
type Item struct {
	Key     string
	Value   []byte
	Version uint64    // see the package documentation; never 0 for a live key
	Expires time.Time // zero: no expiry
}
