package boltstore

import (
	"context"
	"time"

	"github.com/broodhq/brood/store"
)

// runner runs a write: through the writer (Store.write), or at once in the
// transaction of a Group.
type runner func(ctx context.Context, fn func(*txn) result) (result, error)

// Group runs fn on the writer, in one commit: the writes fn makes through
// w (Set, Delete, Incr, SetIfAbsent, CompareAndSet) all go into one frame
// of the log, and Group returns once it has reached the file, as each
// write alone would. If the commit fails, Group returns its error and the
// results fn saw are void: none of its writes happened. A caller whose ctx
// ends first gets ctx's error; its writes may still happen.
//
// Group is for a caller that has several writes at hand at once (the
// agent's batch of a worker's operations): one commit for all of them
// instead of one each, and none of them waiting behind the writer's next
// round. w's reads (Get, Lookup, List) see the group's writes so far; fn
// must not keep w, nor call s's own write methods (they would wait for
// this very commit).
func (s *Store) Group(ctx context.Context, fn func(w store.Store)) error {
	_, err := s.write(ctx, func(t *txn) result {
		fn(&t.group)
		return result{}
	})
	return err
}

// groupStore is the store.Store that a Group's fn writes through.
type groupStore struct {
	t *txn
}

var _ store.Store = (*groupStore)(nil)

// run applies fn to the group's transaction at once.
func (g *groupStore) run(ctx context.Context, fn func(*txn) result) (result, error) {
	r := fn(g.t)
	return r, r.err
}

// Get implements store.Store.
func (g *groupStore) Get(ctx context.Context, key string) ([]byte, bool, error) {
	it, ok, err := g.Lookup(ctx, key)
	return it.Value, ok, err
}

// Lookup implements store.Store, in the group's transaction.
func (g *groupStore) Lookup(ctx context.Context, key string) (store.Item, bool, error) {
	if err := store.CheckKey(key); err != nil {
		return store.Item{}, false, err
	}
	r, ok, err := g.t.live(key)
	if err != nil || !ok {
		return store.Item{}, false, err
	}
	return r.item(key), true, nil
}

// List implements store.Store, in the group's transaction.
func (g *groupStore) List(ctx context.Context, prefix, after string, limit int) ([]store.Item, error) {
	if err := store.CheckList(prefix, after, limit); err != nil {
		return nil, err
	}
	t := g.t
	kv, err := t.kv()
	if err != nil {
		return nil, err
	}
	over := changesUnder(prefix, after, t.s.pending, t.staged)
	return list(kv.Cursor(), t.nowMs, prefix, after, limit, over), nil
}

// Set implements store.Store.
func (g *groupStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return set(ctx, g.run, key, value, ttl)
}

// Delete implements store.Store.
func (g *groupStore) Delete(ctx context.Context, key string) error {
	return del(ctx, g.run, key)
}

// Incr implements store.Store.
func (g *groupStore) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	return incr(ctx, g.run, key, delta, ttl)
}

// SetIfAbsent implements store.Store.
func (g *groupStore) SetIfAbsent(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	return compareAndSet(ctx, g.run, false, key, value, 0, ttl)
}

// CompareAndSet implements store.Store.
func (g *groupStore) CompareAndSet(ctx context.Context, key string, value []byte, version uint64, ttl time.Duration) (bool, error) {
	return compareAndSet(ctx, g.run, false, key, value, version, ttl)
}

// Close implements store.Store: the group's view has nothing to close.
func (g *groupStore) Close() error { return nil }
