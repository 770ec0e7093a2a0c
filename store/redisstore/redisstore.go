package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/broodhq/brood/internal/storeurl"
	"github.com/broodhq/brood/store"
)

// DefaultTimeout bounds each network step (dial, read, write, waiting for a
// pooled connection) unless the URL sets its own.
const DefaultTimeout = time.Second

// SweepEvery is how often expired keys are taken out of the key index
// (Redis removes the keys themselves).
const SweepEvery = time.Second

// maxSweep bounds the keys one sweep script takes out.
const maxSweep = 1000

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
	keys    string // the key index
	expiry  string // the expiry index
	addr    string // for errors
	own     bool   // Close closes rdb
	closed  atomic.Bool
	stop    chan struct{}
	swept   sync.WaitGroup
}

var _ store.Store = (*Store)(nil)

// Namespace is the key prefix of the application named app. The name is a
// Redis hash tag, so that one application's keys share a Redis Cluster
// slot, as the scripts need.
func Namespace(app string) string { return "brood:{" + url.QueryEscape(app) + "}:" }

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
// Namespace), and starts its sweeper. Close stops the sweeper; it closes
// rdb only if Open made it.
func New(rdb redis.UniversalClient, namespace string) *Store {
	addr := "redis"
	if c, ok := rdb.(*redis.Client); ok {
		addr = c.Options().Addr
	}
	base := strings.TrimSuffix(namespace, ":")
	s := &Store{rdb: rdb, ns: namespace, counter: base + "#version", keys: base + "#keys", expiry: base + "#expiry",
		addr: addr, stop: make(chan struct{})}
	s.swept.Go(s.sweeper)
	return s
}

// sweeper takes expired keys out of the key index every SweepEvery, so that
// the index, and List's cost, stay bounded by the live keys.
func (s *Store) sweeper() {
	tick := time.NewTicker(SweepEvery)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*DefaultTimeout)
			n, err := sweepScript.Run(ctx, s.rdb, []string{s.keys, s.expiry}, maxSweep).Int()
			cancel()
			if err != nil || n < maxSweep {
				break // Redis down: the next tick tries again
			}
		}
	}
}

// keysOf is the KEYS of a write script for key.
func (s *Store) keysOf(key string) []string {
	return []string{s.ns + key, s.counter, s.keys, s.expiry}
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
	return s.fail(setScript.Run(ctx, s.rdb, s.keysOf(key), key, value, ms(ttl)).Err())
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := store.CheckKey(key); err != nil {
		return err
	}
	if err := s.enter(ctx); err != nil {
		return err
	}
	return s.fail(deleteScript.Run(ctx, s.rdb, []string{s.ns + key, s.keys, s.expiry}, key).Err())
}

// Incr implements store.Store.
func (s *Store) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := store.CheckWrite(key, nil, ttl); err != nil {
		return 0, err
	}
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	n, err := incrScript.Run(ctx, s.rdb, s.keysOf(key), key, delta, ms(ttl)).Int64()
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
	n, err := casScript.Run(ctx, s.rdb, s.keysOf(key), key, value, strconv.FormatUint(version, 10), ms(ttl)).Int64()
	return n == 1, s.fail(err)
}

// List implements store.Store: it reads the key index from the first key
// it may return, in key order, so its cost is in proportion to the keys it
// returns, not to the database.
func (s *Store) List(ctx context.Context, prefix, after string, limit int) ([]store.Item, error) {
	if err := store.CheckList(prefix, after, limit); err != nil {
		return nil, err
	}
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	from, to := "-", "+"
	if prefix != "" {
		// No UTF-8 text holds the byte 0xff: every key with the prefix
		// sorts before prefix + "\xff".
		from, to = "["+prefix, "["+prefix+"\xff"
	}
	if after != "" && after >= prefix {
		from = "(" + after
	}
	var items []store.Item
	for len(items) < limit {
		want := limit - len(items)
		members, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: s.keys, Start: from, Stop: to, ByLex: true, Count: int64(want)}).Result()
		if err != nil {
			return nil, s.fail(err)
		}
		if len(members) == 0 {
			break
		}
		now := time.Now()
		cmds, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range members {
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
				continue // expired, not yet swept from the index
			}
			if it, ok := item(members[i], r[0], r[1], r[2], now); ok {
				items = append(items, it)
			}
		}
		if len(members) < want {
			break
		}
		from = "(" + members[len(members)-1]
	}
	return items, nil
}

// Close implements store.Store: it stops the sweeper, and closes the
// client if Open made it.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	close(s.stop)
	s.swept.Wait()
	if !s.own {
		return nil
	}
	return s.rdb.Close()
}
