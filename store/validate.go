package store

import (
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Limits every backend enforces.
const (
	// MaxKeyLen bounds a key, in bytes: room for a namespace and a token,
	// small enough that keys never dominate memory or a Redis key space.
	MaxKeyLen = 1024
	// MaxValueLen bounds a value, in bytes. Values travel from a worker to
	// the agent in one message (16 MiB by default); 1 MiB keeps a big
	// session far under that, and the agent's write batches short.
	MaxValueLen = 1 << 20
	// MinTTL is the shortest expiry: Redis and the agent's database count
	// TTLs in milliseconds.
	MinTTL = time.Millisecond
	// MaxTTL is the longest expiry; a longer one is a mistake (a unit
	// wrong), and beyond it time arithmetic overflows.
	MaxTTL = 10 * 365 * 24 * time.Hour
	// MaxListLimit bounds one List page: one page is one message.
	MaxListLimit = 1000
)

// CheckKey returns nil if key is valid, or an error wrapping ErrBadKey or
// ErrKeyTooLong. Backends call it; so may callers that want to know first.
func CheckKey(key string) error {
	switch {
	case key == "" || !utf8.ValidString(key):
		return ErrBadKey
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: %d bytes, limit %d (store.MaxKeyLen)", ErrKeyTooLong, len(key), MaxKeyLen)
	}
	return nil
}

// CheckValue returns nil if value fits, or an error wrapping
// ErrValueTooLarge.
func CheckValue(value []byte) error {
	if len(value) > MaxValueLen {
		return fmt.Errorf("%w: %d bytes, limit %d (store.MaxValueLen)", ErrValueTooLarge, len(value), MaxValueLen)
	}
	return nil
}

// CheckTTL returns nil if ttl is 0 or from MinTTL to MaxTTL, or an error
// wrapping ErrBadTTL.
func CheckTTL(ttl time.Duration) error {
	if ttl != 0 && (ttl < MinTTL || ttl > MaxTTL) {
		return fmt.Errorf("%w: %s; want 0 (no expiry) or from %s to %s", ErrBadTTL, ttl, MinTTL, MaxTTL)
	}
	return nil
}

// CheckWrite checks a key, a value and a TTL.
func CheckWrite(key string, value []byte, ttl time.Duration) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if err := CheckValue(value); err != nil {
		return err
	}
	return CheckTTL(ttl)
}

// CheckList checks List's arguments. The prefix may be empty (every key)
// but must be valid UTF-8 and no longer than a key.
func CheckList(prefix, after string, limit int) error {
	if !utf8.ValidString(prefix) || !utf8.ValidString(after) {
		return ErrBadKey
	}
	if len(prefix) > MaxKeyLen || len(after) > MaxKeyLen {
		return fmt.Errorf("%w: prefix or after over %d bytes (store.MaxKeyLen)", ErrKeyTooLong, MaxKeyLen)
	}
	if limit < 1 || limit > MaxListLimit {
		return fmt.Errorf("%w: %d; want 1 to %d (store.MaxListLimit)", ErrBadLimit, limit, MaxListLimit)
	}
	return nil
}

// ExpiresAt returns when a key written now with ttl expires (zero: never),
// in the millisecond precision every backend keeps.
func ExpiresAt(now time.Time, ttl time.Duration) time.Time {
	if ttl == 0 {
		return time.Time{}
	}
	return now.Add(ttl).Truncate(time.Millisecond)
}

// AddInt parses value as a counter and adds delta, as Incr does: value must
// be a decimal int64 (an optional '-', then digits), and the sum must stay
// in range. Backends that keep counters as text share it.
func AddInt(value []byte, delta int64) (int64, error) {
	n, err := ParseInt(value)
	if err != nil {
		return 0, err
	}
	sum := n + delta
	if (delta > 0 && sum < n) || (delta < 0 && sum > n) {
		return 0, fmt.Errorf("%w: %d%+d", ErrOverflow, n, delta)
	}
	return sum, nil
}

// ParseInt parses a counter's value: '-' or not, then digits without
// leading zeros (Redis's rule, so that every backend agrees).
func ParseInt(value []byte) (int64, error) {
	digits := value
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(value) > 20 || digits[0] == '+' || (digits[0] == '0' && len(value) > 1) {
		return 0, fmt.Errorf("%w: %q", ErrNotInteger, truncate(value))
	}
	n, err := strconv.ParseInt(string(value), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", ErrNotInteger, truncate(value))
	}
	return n, nil
}

func truncate(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}
