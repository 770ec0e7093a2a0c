package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/broodhq/brood/store"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Errors of Open.
var (
	// ErrLocked: another Store (in this process or another) has the file
	// open.
	ErrLocked = errors.New("boltstore: database file in use")
	// ErrForeign: the file is not a database this package created, or it
	// is damaged.
	ErrForeign = errors.New("boltstore: not a brood store database")
)

var (
	bucketMeta   = []byte("brood")
	bucketKV     = []byte("kv")
	bucketExpiry = []byte("expiry")
	formatKey    = []byte("format")
	formatValue  = []byte("brood-store/1")
)

// Defaults of Options.
const (
	DefaultLockTimeout = 2 * time.Second
	DefaultSweepEvery  = time.Second
	// maxGroup bounds the writes in one commit, so that one commit stays
	// short and the writes behind it are not held long.
	maxGroup = 1000
	// maxSweep bounds the expired keys one sweep removes.
	maxSweep = 5000
)

// Options tune Open; the zero value is the default.
type Options struct {
	// Sync fsyncs every frame of the log before acknowledging its writes,
	// and every checkpoint: they then survive a power cut, at the cost of
	// an fsync per group of writes.
	Sync bool
	// LockTimeout bounds the wait for another holder of the file to close
	// it (DefaultLockTimeout if 0).
	LockTimeout time.Duration
	// SweepEvery is how often the log is checkpointed into the database
	// and expired keys are removed from it (DefaultSweepEvery if 0).
	SweepEvery time.Duration
}

// Store is a store.Store in a bbolt file and its write-ahead log.
type Store struct {
	db   *bolt.DB
	path string

	life   sync.RWMutex // operations hold it shared; Close exclusively
	closed bool

	writes chan *write
	quit   chan struct{}
	done   sync.WaitGroup

	// The changes in the log, not yet in the database. Only the writer
	// changes them, holding mu; it removes them only once the database has
	// them, so that a reader who does not find a key here, and begins its
	// database transaction before it lets go of mu, sees the key's latest
	// record there.
	mu           sync.RWMutex
	pending      map[string][]byte // key → record; nil: deleted
	pendingBytes int               // writer's

	// The writer's alone.
	log    *wal
	seq    uint64 // the last version given
	t      txn
	refuse error // set while checkpoints fail with too much waiting for them
	// While writes are refused, the next write round's checkpoint waits
	// until retryAt, retryWait after the last failed one (writer.go).
	retryAt   time.Time
	retryWait time.Duration

	// Tests': refuseLogBytes but lower, and an error every checkpoint
	// fails with (a disk that cannot take the database's growth).
	refuseLogBytes  int64
	checkpointFault error
	checkpoints     int // attempted
}

var _ store.Store = (*Store)(nil)

// Open opens the store in the file at path, creating it (mode 0600) if it
// does not exist; its directory must exist.
func Open(path string, o Options) (*Store, error) {
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.SweepEvery <= 0 {
		o.SweepEvery = DefaultSweepEvery
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.LockTimeout, NoSync: !o.Sync, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("%w: %s is held by another process (waited %s): stop it, or use another file", ErrLocked, path, o.LockTimeout)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrVersionMismatch), errors.Is(err, bolterrors.ErrChecksum):
		return nil, fmt.Errorf("%w: %s: %w: move the file away (or delete it to start empty)", ErrForeign, path, err)
	case err != nil:
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	if err := db.Update(initialize); err != nil {
		db.Close()
		if errors.Is(err, ErrForeign) {
			return nil, fmt.Errorf("%w: %s: %w: move the file away (or delete it to start empty)", ErrForeign, path, err)
		}
		return nil, fmt.Errorf("boltstore: initialize %s: %w", path, err)
	}
	s := &Store{db: db, path: path, writes: make(chan *write, maxGroup), quit: make(chan struct{}), pending: map[string][]byte{}, refuseLogBytes: refuseLogBytes}
	db.View(func(tx *bolt.Tx) error {
		s.seq = tx.Bucket(bucketKV).Sequence()
		return nil
	})
	s.log, err = openLog(path+".log", o.Sync, func(kind byte, key string, rec []byte) {
		rec = bytes.Clone(rec) // out of replay's buffer; a delete's nil stays nil
		s.setPending(key, rec)
		if r, ok := decodeRecord(rec); ok && r.version > s.seq {
			s.seq = r.version
		}
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	s.done.Go(func() { s.writer(o.SweepEvery) })
	return s, nil
}

// initialize creates the buckets of a new file, and refuses a file that
// holds anything else.
func initialize(tx *bolt.Tx) error {
	if meta := tx.Bucket(bucketMeta); meta != nil {
		if f := meta.Get(formatKey); !bytes.Equal(f, formatValue) {
			return fmt.Errorf("%w: format %q, want %q", ErrForeign, f, formatValue)
		}
		if tx.Bucket(bucketKV) == nil || tx.Bucket(bucketExpiry) == nil {
			return fmt.Errorf("%w: buckets missing", ErrForeign)
		}
		return nil
	}
	empty := true
	tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
	if !empty {
		return fmt.Errorf("%w: a bbolt database with other buckets", ErrForeign)
	}
	meta, err := tx.CreateBucket(bucketMeta)
	if err == nil {
		err = meta.Put(formatKey, formatValue)
	}
	if err == nil {
		_, err = tx.CreateBucket(bucketKV)
	}
	if err == nil {
		_, err = tx.CreateBucket(bucketExpiry)
	}
	return err
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

func (s *Store) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.life.RLock()
	if s.closed {
		s.life.RUnlock()
		return store.ErrClosed
	}
	return nil
}

func (s *Store) leave() { s.life.RUnlock() }

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
	if err := s.enter(ctx); err != nil {
		return store.Item{}, false, err
	}
	defer s.leave()
	now := time.Now().UnixMilli()
	s.mu.RLock()
	rec, ok := s.pending[key]
	if ok {
		s.mu.RUnlock()
		// Records are never changed once made: no lock needed to read one.
		if r, ok := decodeRecord(rec); ok && !r.expired(now) {
			return r.item(key), true, nil
		}
		return store.Item{}, false, nil
	}
	tx, err := s.db.Begin(false)
	s.mu.RUnlock()
	if err != nil {
		return store.Item{}, false, fmt.Errorf("boltstore: read %s: %w", s.path, err)
	}
	defer tx.Rollback()
	if r, ok := decodeRecord(tx.Bucket(bucketKV).Get([]byte(key))); ok && !r.expired(now) {
		return r.item(key), true, nil
	}
	return store.Item{}, false, nil
}

// item copies r out of bbolt's memory.
func (r record) item(key string) store.Item {
	return store.Item{Key: key, Value: bytes.Clone(r.value[:len(r.value):len(r.value)]), Version: r.version, Expires: r.expiresAt()}
}

// List implements store.Store. It seeks to the prefix and reads only the
// keys it returns (and expired ones among them).
func (s *Store) List(ctx context.Context, prefix, after string, limit int) ([]store.Item, error) {
	if err := store.CheckList(prefix, after, limit); err != nil {
		return nil, err
	}
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	now := time.Now().UnixMilli()
	s.mu.RLock()
	over := changesUnder(prefix, after, s.pending)
	tx, err := s.db.Begin(false)
	s.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("boltstore: read %s: %w", s.path, err)
	}
	defer tx.Rollback()
	return list(tx.Bucket(bucketKV).Cursor(), now, prefix, after, limit, over), nil
}

// change is a key's record in the pending changes; nil: deleted.
type change struct {
	key string
	rec []byte
}

// changesUnder returns the changes under prefix after after, by key; a
// later layer's change of a key hides an earlier one's.
func changesUnder(prefix, after string, layers ...map[string][]byte) []change {
	var out []change
	at := map[string]int{} // key → index in out, with more than one layer
	for i, m := range layers {
		for k, rec := range m {
			if !strings.HasPrefix(k, prefix) || k <= after {
				continue
			}
			if j, ok := at[k]; ok {
				out[j].rec = rec
				continue
			}
			if len(layers) > 1 && i < len(layers)-1 {
				at[k] = len(out)
			}
			out = append(out, change{k, rec})
		}
	}
	slices.SortFunc(out, func(a, b change) int { return strings.Compare(a.key, b.key) })
	return out
}

// list returns up to limit live items under prefix after after: the
// database's, from c, with the changes over (sorted by key) over them.
func list(c *bolt.Cursor, nowMs int64, prefix, after string, limit int, over []change) []store.Item {
	var items []store.Item
	p := []byte(prefix)
	start := p
	if after > prefix {
		start = []byte(after)
	}
	k, v := c.Seek(start)
	for len(items) < limit {
		for k != nil && bytes.HasPrefix(k, p) && string(k) <= after {
			k, v = c.Next()
		}
		if k != nil && !bytes.HasPrefix(k, p) {
			k = nil
		}
		var (
			key string
			rec []byte
		)
		switch {
		case len(over) > 0 && (k == nil || over[0].key <= string(k)):
			key, rec = over[0].key, over[0].rec
			if k != nil && over[0].key == string(k) {
				k, v = c.Next()
			}
			over = over[1:]
		case k != nil:
			key, rec = string(k), v
			k, v = c.Next()
		default:
			return items
		}
		if r, ok := decodeRecord(rec); ok && !r.expired(nowMs) {
			items = append(items, r.item(key))
		}
	}
	return items
}

// Set implements store.Store.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return set(ctx, s.write, key, value, ttl)
}

// set makes value's record before run, which may return before it has used
// it (the writer's, when ctx ends first: the caller may then change value).
func set(ctx context.Context, run runner, key string, value []byte, ttl time.Duration) error {
	if err := store.CheckWrite(key, value, ttl); err != nil {
		return err
	}
	rec := newRecord(value)
	_, err := run(ctx, func(t *txn) result {
		t.put(key, rec, store.ExpiresAt(t.now, ttl))
		return result{}
	})
	return err
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	return del(ctx, s.write, key)
}

func del(ctx context.Context, run runner, key string) error {
	if err := store.CheckKey(key); err != nil {
		return err
	}
	_, err := run(ctx, func(t *txn) result {
		t.delete(key)
		return result{}
	})
	return err
}

// Incr implements store.Store.
func (s *Store) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	return incr(ctx, s.write, key, delta, ttl)
}

func incr(ctx context.Context, run runner, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := store.CheckWrite(key, nil, ttl); err != nil {
		return 0, err
	}
	r, err := run(ctx, func(t *txn) result {
		old, ok, err := t.live(key)
		if err != nil {
			return result{err: err}
		}
		if !ok {
			t.put(key, newIntRecord(delta), store.ExpiresAt(t.now, ttl))
			return result{n: delta}
		}
		n, err := store.AddInt(old.value, delta)
		if err != nil {
			return result{err: err}
		}
		t.put(key, newIntRecord(n), old.expiresAt())
		return result{n: n}
	})
	return r.n, err
}

// SetIfAbsent implements store.Store.
func (s *Store) SetIfAbsent(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	return s.CompareAndSet(ctx, key, value, 0, ttl)
}

// CompareAndSet implements store.Store.
func (s *Store) CompareAndSet(ctx context.Context, key string, value []byte, version uint64, ttl time.Duration) (bool, error) {
	return compareAndSet(ctx, s.write, true, key, value, version, ttl)
}

// compareAndSet makes value's record (its copy) before run, as set does,
// when run may return before it has used it (clone); a Group's run uses it
// at once, and makes the record only if it writes it.
func compareAndSet(ctx context.Context, run runner, clone bool, key string, value []byte, version uint64, ttl time.Duration) (bool, error) {
	if err := store.CheckWrite(key, value, ttl); err != nil {
		return false, err
	}
	var rec []byte
	if clone {
		rec = newRecord(value)
	}
	r, err := run(ctx, func(t *txn) result {
		old, _, err := t.live(key)
		if err != nil {
			return result{err: err}
		}
		if old.version != version {
			return result{}
		}
		if rec == nil {
			rec = newRecord(value)
		}
		t.put(key, rec, store.ExpiresAt(t.now, ttl))
		return result{ok: true}
	})
	return r.ok, err
}

// Check reads every page of the file and reports the first inconsistency.
func (s *Store) Check(ctx context.Context) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.leave()
	return s.db.View(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() { // drained: its checker goroutine ends
			if first == nil {
				first = fmt.Errorf("%w: %s: %w", ErrForeign, s.path, err)
			}
		}
		return first
	})
}

// Stats counts the keys in the file, expired ones not yet swept included,
// and the entries of the expiry index, after a checkpoint.
func (s *Store) Stats() (keys, expiring int, err error) {
	if _, err := s.write(context.Background(), nil); err != nil {
		return 0, 0, err
	}
	s.life.RLock()
	defer s.life.RUnlock()
	if s.closed {
		return 0, 0, store.ErrClosed
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		keys = tx.Bucket(bucketKV).Stats().KeyN
		expiring = tx.Bucket(bucketExpiry).Stats().KeyN
		return nil
	})
	return keys, expiring, err
}

// Close waits for the operations under way, commits what is queued and
// closes the file.
func (s *Store) Close() error {
	s.life.Lock()
	if s.closed {
		s.life.Unlock()
		return nil
	}
	s.closed = true
	s.life.Unlock()
	close(s.quit)
	s.done.Wait()
	lerr := s.log.f.Close()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("boltstore: close %s: %w", s.path, err)
	}
	if lerr != nil {
		return fmt.Errorf("boltstore: close %s: %w", s.log.path, lerr)
	}
	return nil
}
