package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/broodhq/brood/internal/storeurl"
	"github.com/broodhq/brood/store"
)

// DefaultTimeout bounds each network step (dial, read, write, waiting for a
// pooled connection) unless the URL sets its own.
const DefaultTimeout = time.Second

// scanCount is the COUNT hint of List's SCAN.
const scanCount = 1000

func init() {
	// A Redis that does not answer yet does not stop the cluster: the
	// HTTP server serves what needs no store, store calls fail fast, and
	// they work once Redis is there.
	open := func(ctx context.Context, u *url.URL, app string, log *slog.Logger) (store.Store, error) {
		s, err := Open(u.String(), app)
		if err != nil {
			return nil, err
		}
		if err := s.Ping(ctx); err != nil && log != nil {
			log.Warn("store: Redis does not answer; store calls fail with store.ErrUnavailable until it does", "addr", s.addr, "err", err)
		}
		return s, nil
	}
	storeurl.Register("redis", open)
	storeurl.Register("rediss", open)
}

// Store is a store.Store in Redis.
type Store struct {
	rdb     redis.UniversalClient
	ns      string // prefix of every key
	counter string // the version counter
	addr    string // for errors
	own     bool   // Close closes rdb
	closed  atomic.Bool
}

var _ store.Store = (*Store)(nil)

// Namespace is the key prefix of the application named app.
func Namespace(app string) string { return "brood:" + url.QueryEscape(app) + ":" }

// Open returns a Store for the application named app over the Redis at
// rawURL (redis://[user:password@]host:port/db, go-redis's options as query
// parameters). It does not wait for Redis: see Ping.
func Open(rawURL, app string) (*Store, error) {
	o, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redisstore: %w", err)
	}
	for _, d := range []*time.Duration{&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout} {
		if *d == 0 {
			*d = DefaultTimeout
		}
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 1
	}
	s := New(redis.NewClient(o), Namespace(app))
	s.own = true
	return s, nil
}

// Ping checks that Redis answers, within 2×DefaultTimeout at most.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*DefaultTimeout)
	defer cancel()
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("%w: redis at %s does not answer: %w", store.ErrUnavailable, s.addr, err)
	}
	return nil
}

// New returns a Store over rdb whose keys all start with namespace (see
// Namespace). Close does not close rdb.
func New(rdb redis.UniversalClient, namespace string) *Store {
	addr := "redis"
	if c, ok := rdb.(*redis.Client); ok {
		addr = c.Options().Addr
	}
	return &Store{rdb: rdb, ns: namespace, counter: strings.TrimSuffix(namespace, ":") + "#version", addr: addr}
}

// fail turns a go-redis error into the store's.
func (s *Store) fail(err error) error {
	var rerr redis.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, redis.ErrClosed) || s.closed.Load():
		return fmt.Errorf("%w: %w", store.ErrClosed, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: redis at %s: %w", store.ErrUnavailable, s.addr, err)
	case errors.As(err, &rerr):
		msg := rerr.Error()
		switch {
		case strings.Contains(msg, "not an integer"):
			return fmt.Errorf("%w: %s", store.ErrNotInteger, msg)
		case strings.Contains(msg, "overflow"):
			return fmt.Errorf("%w: %s", store.ErrOverflow, msg)
		}
		return fmt.Errorf("redisstore: redis at %s: %w", s.addr, err)
	}
	return fmt.Errorf("%w: redis at %s: %w", store.ErrUnavailable, s.addr, err)
}

func (s *Store) enter(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return ctx.Err()
}

func ms(ttl time.Duration) int64 { return ttl.Milliseconds() }

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := store.CheckKey(key); err != nil {
		return nil, false, err
	}
	if err := s.enter(ctx); err != nil {
		return nil, false, err
	}
	v, err := s.rdb.HGet(ctx, s.ns+key, "v").Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, s.fail(err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, true, nil
}

// Lookup implements store.Store.
func (s *Store) Lookup(ctx context.Context, key string) (store.Item, bool, error) {
	if err := store.CheckKey(key); err != nil {
		return store.Item{}, false, err
	}
	if err := s.enter(ctx); err != nil {
		return store.Item{}, false, err
	}
	now := time.Now()
	r, err := lookupScript.Run(ctx, s.rdb, []string{s.ns + key}).Slice()
	if errors.Is(err, redis.Nil) {
		return store.Item{}, false, nil
	}
	if err != nil {
		return store.Item{}, false, s.fail(err)
	}
	it, ok := item(key, r[0], r[1], r[2], now)
	return it, ok, nil
}

// item makes an Item of a value, a version and a PTTL as Redis returns them.
func item(key string, v, n, pttl any, now time.Time) (store.Item, bool) {
	vs, ok := v.(string)
	if !ok {
		return store.Item{}, false
	}
	it := store.Item{Key: key, Value: []byte(vs)}
	switch n := n.(type) {
	case string:
		it.Version, _ = strconv.ParseUint(n, 10, 64)
	case int64:
		it.Version = uint64(n)
	}
	if p, ok := pttl.(int64); ok && p > 0 {
		it.Expires = now.Add(time.Duration(p) * time.Millisecond).Truncate(time.Millisecond)
	}
	return it, true
}

// Set implements store.Store.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := store.CheckWrite(key, value, ttl); err != nil {
		return err
	}
	if err := s.enter(ctx); err != nil {
		return err
	}
	return s.fail(setScript.Run(ctx, s.rdb, []string{s.ns + key, s.counter}, value, ms(ttl)).Err())
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := store.CheckKey(key); err != nil {
		return err
	}
	if err := s.enter(ctx); err != nil {
		return err
	}
	return s.fail(s.rdb.Del(ctx, s.ns+key).Err())
}

// Incr implements store.Store.
func (s *Store) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := store.CheckWrite(key, nil, ttl); err != nil {
		return 0, err
	}
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	n, err := incrScript.Run(ctx, s.rdb, []string{s.ns + key, s.counter}, delta, ms(ttl)).Int64()
	return n, s.fail(err)
}

// SetIfAbsent implements store.Store.
func (s *Store) SetIfAbsent(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	return s.CompareAndSet(ctx, key, value, 0, ttl)
}

// CompareAndSet implements store.Store.
func (s *Store) CompareAndSet(ctx context.Context, key string, value []byte, version uint64, ttl time.Duration) (bool, error) {
	if err := store.CheckWrite(key, value, ttl); err != nil {
		return false, err
	}
	if err := s.enter(ctx); err != nil {
		return false, err
	}
	n, err := casScript.Run(ctx, s.rdb, []string{s.ns + key, s.counter}, value, strconv.FormatUint(version, 10), ms(ttl)).Int64()
	return n == 1, s.fail(err)
}

// List implements store.Store; see the package documentation for its cost.
func (s *Store) List(ctx context.Context, prefix, after string, limit int) ([]store.Item, error) {
	if err := store.CheckList(prefix, after, limit); err != nil {
		return nil, err
	}
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	var keys []string
	iter := s.rdb.Scan(ctx, 0, globEscape(s.ns+prefix)+"*", scanCount).Iterator()
	for iter.Next(ctx) {
		if k := strings.TrimPrefix(iter.Val(), s.ns); k > after {
			keys = append(keys, k)
		}
	}
	if err := iter.Err(); err != nil {
		return nil, s.fail(err)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys) // SCAN may return a key twice
	items := make([]store.Item, 0, min(limit, len(keys)))
	for len(keys) > 0 && len(items) < limit {
		batch := keys[:min(limit-len(items), len(keys))]
		keys = keys[len(batch):]
		now := time.Now()
		cmds, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range batch {
				lookupScript.Eval(ctx, p, []string{s.ns + k}) // EVALSHA cannot fall back to EVAL in a pipeline
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, s.fail(err)
		}
		for i, c := range cmds {
			r, err := c.(*redis.Cmd).Slice()
			if err != nil || len(r) != 3 {
				continue // expired or deleted since the SCAN
			}
			if it, ok := item(batch[i], r[0], r[1], r[2], now); ok {
				items = append(items, it)
			}
		}
	}
	return items, nil
}

// globEscape quotes the characters SCAN's MATCH treats as a pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Close implements store.Store: it closes the client Open made.
func (s *Store) Close() error {
	if s.closed.Swap(true) || !s.own {
		return nil
	}
	return s.rdb.Close()
}
