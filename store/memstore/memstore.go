package memstore

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/broodhq/brood/store"
)

// SweepEvery is how often expired keys are removed.
const SweepEvery = time.Second

// Store is a store.Store in memory. The zero value is not usable: call New.
type Store struct {
	mu      sync.Mutex
	m       map[string]entry
	version uint64
	closed  bool
	stop    chan struct{}
	swept   sync.WaitGroup
}

type entry struct {
	value   []byte
	version uint64
	expires time.Time
}

var _ store.Store = (*Store)(nil)

// New returns an empty Store; Close stops its sweeper.
func New() *Store {
	s := &Store{m: map[string]entry{}, stop: make(chan struct{})}
	s.swept.Go(s.sweep)
	return s
}

func (s *Store) sweep() {
	t := time.NewTicker(SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.mu.Lock()
			for k, e := range s.m {
				if e.expired(now) {
					delete(s.m, k)
				}
			}
			s.mu.Unlock()
		}
	}
}

func (e entry) expired(now time.Time) bool {
	return !e.expires.IsZero() && !now.Before(e.expires)
}

// live returns key's entry if it is there and not expired. s.mu is held.
func (s *Store) live(key string, now time.Time) (entry, bool) {
	e, ok := s.m[key]
	if !ok || e.expired(now) {
		return entry{}, false
	}
	return e, true
}

// lock locks s unless it is closed, checking ctx first.
func (s *Store) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return store.ErrClosed
	}
	return nil
}

func (s *Store) put(key string, value []byte, ttl time.Duration, now time.Time) {
	s.version++
	s.m[key] = entry{value: slices.Clone(value), version: s.version, expires: store.ExpiresAt(now, ttl)}
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, bool, error) {
	it, ok, err := s.Lookup(ctx, key)
	return it.Value, ok, err
}

// Lookup implements store.Store.
func (s *Store) Lookup(ctx context.Context, key string) (store.Item, bool, error) {
	if err := store.CheckKey(key); err != nil {
		return store.Item{}, false, err
	}
	if err := s.lock(ctx); err != nil {
		return store.Item{}, false, err
	}
	defer s.mu.Unlock()
	e, ok := s.live(key, time.Now())
	if !ok {
		return store.Item{}, false, nil
	}
	return e.item(key), true, nil
}

func (e entry) item(key string) store.Item {
	v := slices.Clone(e.value)
	if v == nil {
		v = []byte{}
	}
	return store.Item{Key: key, Value: v, Version: e.version, Expires: e.expires}
}

// Set implements store.Store.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := store.CheckWrite(key, value, ttl); err != nil {
		return err
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.put(key, value, ttl, time.Now())
	return nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := store.CheckKey(key); err != nil {
		return err
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

// Incr implements store.Store.
func (s *Store) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := store.CheckWrite(key, nil, ttl); err != nil {
		return 0, err
	}
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	now := time.Now()
	e, ok := s.live(key, now)
	if !ok {
		s.put(key, strconv.AppendInt(nil, delta, 10), ttl, now)
		return delta, nil
	}
	n, err := store.AddInt(e.value, delta)
	if err != nil {
		return 0, err
	}
	s.version++
	s.m[key] = entry{value: strconv.AppendInt(nil, n, 10), version: s.version, expires: e.expires}
	return n, nil
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
	if err := s.lock(ctx); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	now := time.Now()
	if e, _ := s.live(key, now); e.version != version {
		return false, nil
	}
	s.put(key, value, ttl, now)
	return true, nil
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, prefix, after string, limit int) ([]store.Item, error) {
	if err := store.CheckList(prefix, after, limit); err != nil {
		return nil, err
	}
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	now := time.Now()
	var ks []string
	for k, e := range s.m {
		if strings.HasPrefix(k, prefix) && k > after && !e.expired(now) {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	items := make([]store.Item, 0, min(limit, len(ks)))
	for _, k := range ks[:min(limit, len(ks))] {
		items = append(items, s.m[k].item(k))
	}
	return items, nil
}

// Len returns the number of keys held, expired ones not yet swept included.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// Close implements store.Store.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.m = nil
	s.mu.Unlock()
	close(s.stop)
	s.swept.Wait()
	return nil
}
