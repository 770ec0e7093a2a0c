package ratecounter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-chi/httprate"

	"github.com/broodhq/brood/store"
)

// Prefix starts every key this package writes.
const Prefix = "rate:"

// Timeout bounds the store calls of a Counter, whose methods take no
// context.
const Timeout = 2 * time.Second

// Counter is an httprate.LimitCounter in a store.Store.
type Counter struct {
	s      store.Store
	window atomic.Int64 // window length, set by Config
}

var _ httprate.LimitCounter = (*Counter)(nil)

// New returns a LimitCounter counting in s.
func New(s store.Store) *Counter {
	c := &Counter{s: s}
	c.window.Store(int64(time.Minute))
	return c
}

// Config implements httprate.LimitCounter; httprate calls it with the
// limit's window.
func (c *Counter) Config(requestLimit int, windowLength time.Duration) {
	c.window.Store(int64(windowLength))
}

// Increment implements httprate.LimitCounter.
func (c *Counter) Increment(key string, currentWindow time.Time) error {
	return c.IncrementBy(key, currentWindow, 1)
}

// IncrementBy implements httprate.LimitCounter.
func (c *Counter) IncrementBy(key string, currentWindow time.Time, amount int) error {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	w := time.Duration(c.window.Load())
	_, err := c.s.Incr(ctx, windowKey(key, currentWindow), int64(amount), keep(w))
	return err
}

// Get implements httprate.LimitCounter.
func (c *Counter) Get(key string, currentWindow, previousWindow time.Time) (int, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	curr, err := count(ctx, c.s, windowKey(key, currentWindow))
	if err != nil {
		return 0, 0, err
	}
	prev, err := count(ctx, c.s, windowKey(key, previousWindow))
	return curr, prev, err
}

func count(ctx context.Context, s store.Store, key string) (int, error) {
	v, ok, err := s.Get(ctx, key)
	if err != nil || !ok {
		return 0, err
	}
	n, err := store.ParseInt(v)
	return int(n), err
}

// keep is how long a window's counter must live: through the next window,
// which reads it as the previous one, and a little more for clock skew.
func keep(window time.Duration) time.Duration {
	return min(max(2*window+time.Second, store.MinTTL), store.MaxTTL)
}

// windowKey names the counter of key in the window starting at start. Long
// keys are hashed to stay within store.MaxKeyLen.
func windowKey(key string, start time.Time) string {
	if len(key) > 200 {
		sum := sha256.Sum256([]byte(key))
		key = "sha256:" + hex.EncodeToString(sum[:])
	}
	return Prefix + strconv.FormatInt(start.UnixMilli(), 10) + ":" + key
}
