package store

import "errors"

// Errors that callers branch on; every backend returns them (wrapped, test
// with errors.Is), and so does the agent's store across the messenger.
var (
	// ErrBadKey: the key is empty or not valid UTF-8.
	ErrBadKey = errors.New("store: bad key: want a non-empty UTF-8 string")
	// ErrKeyTooLong: the key is over MaxKeyLen bytes.
	ErrKeyTooLong = errors.New("store: key too long")
	// ErrValueTooLarge: the value is over MaxValueLen bytes.
	ErrValueTooLarge = errors.New("store: value too large")
	// ErrBadTTL: the TTL is negative, under MinTTL or over MaxTTL.
	ErrBadTTL = errors.New("store: bad TTL")
	// ErrBadLimit: List's limit is not from 1 to MaxListLimit.
	ErrBadLimit = errors.New("store: bad list limit")
	// ErrNotInteger: Incr on a value that is not a decimal int64.
	ErrNotInteger = errors.New("store: value is not an integer")
	// ErrOverflow: Incr would take the counter past the int64 range; the
	// value is unchanged.
	ErrOverflow = errors.New("store: integer overflow")
	// ErrClosed: the store was closed (the process is stopping).
	ErrClosed = errors.New("store: closed")
	// ErrUnavailable: the store cannot be reached now (no cluster, the
	// agent is gone, Redis is down, the disk refuses writes). The
	// operation may be retried; a write that failed this way may or may
	// not have happened.
	ErrUnavailable = errors.New("store: unavailable")
)
