package boltstore

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/broodhq/brood/store"
	bolt "go.etcd.io/bbolt"
)

// write is one write waiting for the writer.
type write struct {
	fn   func(*txn) result
	done chan result // buffered: the writer never waits for the caller
}

type result struct {
	n   int64
	ok  bool
	err error
}

// txn is the transaction a group of writes shares.
type txn struct {
	kv, expiry *bolt.Bucket
	now        time.Time
	nowMs      int64
}

// write hands fn to the writer and waits for the commit that holds it. A
// caller whose ctx ends first gets ctx's error; its write may still happen.
func (s *Store) write(ctx context.Context, fn func(*txn) result) (result, error) {
	if err := s.enter(ctx); err != nil {
		return result{}, err
	}
	defer s.leave()
	w := &write{fn: fn, done: make(chan result, 1)}
	select {
	case s.writes <- w:
	case <-ctx.Done():
		return result{}, ctx.Err()
	}
	select {
	case r := <-w.done:
		return r, r.err
	case <-ctx.Done():
		return result{}, ctx.Err()
	}
}

// writer owns every write transaction: it takes the writes that are
// waiting (at least one, at most maxGroup) and commits them together.
// Close waits for the operations holding s.life, whose writes are all
// answered by then, before it stops the writer.
func (s *Store) writer() {
	group := make([]*write, 0, maxGroup)
	results := make([]result, 0, maxGroup)
	for {
		select {
		case <-s.quit:
			return
		case w := <-s.writes:
			group = append(group[:0], w)
		}
	more:
		for len(group) < maxGroup {
			select {
			case w := <-s.writes:
				group = append(group, w)
			default:
				break more
			}
		}
		results = results[:0]
		err := s.db.Update(func(tx *bolt.Tx) error {
			t := &txn{kv: tx.Bucket(bucketKV), expiry: tx.Bucket(bucketExpiry), now: time.Now()}
			t.nowMs = t.now.UnixMilli()
			for _, w := range group {
				results = append(results, w.fn(t))
			}
			return nil
		})
		for i, w := range group {
			if err != nil {
				w.done <- result{err: s.commitError(err)}
			} else {
				w.done <- results[i]
			}
		}
		clear(group)
	}
}

func (s *Store) commitError(err error) error {
	return fmt.Errorf("%w: write %s: %w", store.ErrUnavailable, s.path, err)
}

// live returns key's record if it is there and not expired; its value
// aliases bbolt's memory.
func (t *txn) live(key []byte) (record, bool) {
	r, ok := decodeRecord(t.kv.Get(key))
	if !ok || r.expired(t.nowMs) {
		return record{}, false
	}
	return r, true
}

// put writes key with a new version, keeping the expiry index exact.
func (t *txn) put(key, value []byte, expires time.Time) error {
	if err := t.unindex(key); err != nil {
		return err
	}
	version, err := t.kv.NextSequence()
	if err != nil {
		return err
	}
	rec := encodeRecord(version, expires, value)
	if err := t.kv.Put(key, rec); err != nil {
		return err
	}
	if ms := unixMilli(expires); ms != 0 {
		return t.expiry.Put(expiryKey(ms, key), nil)
	}
	return nil
}

func (t *txn) delete(key []byte) error {
	if err := t.unindex(key); err != nil {
		return err
	}
	return t.kv.Delete(key)
}

// unindex removes key's entry from the expiry index, if it has one.
func (t *txn) unindex(key []byte) error {
	if r, ok := decodeRecord(t.kv.Get(key)); ok && r.expires != 0 {
		return t.expiry.Delete(expiryKey(r.expires, key))
	}
	return nil
}

// sweeper removes expired keys every interval, through the writer, so that
// sweeping never contends with writes for bbolt's single writer.
func (s *Store) sweeper(every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-tick.C:
		}
		// A sweep that hit its bound goes again at once.
		for s.sweepOnce() == maxSweep {
		}
	}
}

// sweepOnce removes up to maxSweep expired keys and returns how many.
func (s *Store) sweepOnce() int {
	r, err := s.write(context.Background(), func(t *txn) result {
		// Collect first: deleting under a bbolt cursor makes Next skip.
		var expired [][]byte
		c := t.expiry.Cursor()
		for k, _ := c.First(); k != nil && len(expired) < maxSweep; k, _ = c.Next() {
			if len(k) < 8 || int64(beUint64(k)) > t.nowMs {
				break
			}
			expired = append(expired, bytes.Clone(k))
		}
		var n int64
		for _, k := range expired {
			if err := t.kv.Delete(k[8:]); err != nil {
				return result{err: err}
			}
			if err := t.expiry.Delete(k); err != nil {
				return result{err: err}
			}
			n++
		}
		return result{n: n}
	})
	if err != nil {
		return 0 // closed, or the disk refuses writes: try at the next tick
	}
	return int(r.n)
}
