package boltstore

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/broodhq/brood/store"
	bolt "go.etcd.io/bbolt"
)

// Bounds of the changes held in the log (log.go) and in memory before a
// checkpoint writes them into the database; a checkpoint also runs every
// Options.SweepEvery, with the sweep.
const (
	// maxPendingBytes bounds the memory the pending changes take (about:
	// keys, records and the map's cost of each), so that a checkpoint stays
	// one commit of some ten thousand keys at most: a commit's new pages
	// are allocated while the old are still in use, so a larger one grows
	// the file (by 100 MiB with 16 MiB of 200-byte sessions).
	maxPendingBytes = 4 << 20
	// refusePendingBytes: past this, checkpoints failing (the disk full),
	// writes fail too, instead of memory growing with them.
	refusePendingBytes = 16 * maxPendingBytes
	// maxLogBytes bounds the log, which grows with every write even when
	// they all change the same few keys.
	maxLogBytes = 16 << 20
	// refuseLogBytes: past this, checkpoints failing, writes fail too,
	// instead of the log growing with them: on a disk with room for small
	// frames but not for the database to grow, and writes that keep
	// changing the same keys, the pending changes stay small.
	refuseLogBytes = 16 * maxLogBytes
	// pendingCost is what a pending change costs beyond its key and record.
	pendingCost = 64
	// firstRetry and lastRetry bound the back-off of write rounds'
	// checkpoints while writes are refused: the first write after room is
	// made waits at most lastRetry, and the periodic checkpoint still runs.
	firstRetry = 50 * time.Millisecond
	lastRetry  = 2 * time.Second
)

// write is one write waiting for the writer; a nil fn asks for a
// checkpoint.
type write struct {
	fn   func(*txn) result
	r    result        // the writer's answer, set before it signals done
	done chan struct{} // buffered: the writer never waits for the caller
}

type result struct {
	n   int64
	ok  bool
	err error
}

// txn is what a group of writes sees: its own changes so far, over the
// pending ones (in the log, not yet in the database), over the database.
type txn struct {
	s      *Store
	now    time.Time
	nowMs  int64
	staged map[string][]byte // key → record; nil: deleted
	frame  []byte            // the staged changes as a log frame
	read   *bolt.Tx          // opened by the first read that needs the file
	group  groupStore        // what a Group's fn writes through: &group, t
}

// write hands fn to the writer and waits until the group holding it is in
// the log. A caller whose ctx ends first gets ctx's error; its write may
// still happen.
func (s *Store) write(ctx context.Context, fn func(*txn) result) (result, error) {
	if err := s.enter(ctx); err != nil {
		return result{}, err
	}
	defer s.leave()
	// A chan struct{} is one allocation, a chan result two.
	w := &write{fn: fn, done: make(chan struct{}, 1)}
	select {
	case s.writes <- w:
	case <-ctx.Done():
		return result{}, ctx.Err()
	}
	select {
	case <-w.done:
		return w.r, w.r.err
	case <-ctx.Done():
		return result{}, ctx.Err()
	}
}

// writer owns the log, the pending changes and every write transaction:
// it takes the writes that are waiting (at least one, at most maxGroup),
// runs them together and appends their changes to the log as one frame;
// it checkpoints when the pending changes reach their bounds, and every
// interval, with the sweep of expired keys. Close waits for the operations
// holding s.life before it stops the writer, which checkpoints a last
// time: every write whose caller still waits is answered by then; one
// whose caller gave up (its ctx ended) may still be queued, and happens or
// not, as that caller was told.
func (s *Store) writer(every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	group := make([]*write, 0, maxGroup)
	results := make([]result, maxGroup)
	s.t = txn{s: s, staged: map[string][]byte{}}
	s.t.group.t = &s.t
	for {
		select {
		case <-s.quit:
			s.checkpoint(false) // failing, the log keeps the writes
			return
		case <-tick.C:
			s.maintain()
			continue
		case w := <-s.writes:
			group = append(group[:0], w)
		}
		// Refused until a checkpoint succeeds: one first, so that the
		// writes of the round it succeeds in are taken, but not more often
		// than the back-off allows: on a disk that stays full, a failing
		// checkpoint is a bbolt commit of up to refusePendingBytes, and a
		// client retrying its writes in a loop would have the agent spend
		// a core on them. Refused, a round does not checkpoint after its
		// writes either (they changed nothing).
		refused := s.refuse != nil
		if refused && !time.Now().Before(s.retryAt) {
			s.checkpoint(false)
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
		s.commit(group, results)
		asked := false
		for i, w := range group {
			if w.fn == nil {
				asked = true
			} else {
				w.answer(results[i])
			}
		}
		if asked || !refused && (s.pendingBytes > maxPendingBytes || s.log.size > maxLogBytes) {
			_, err := s.checkpoint(false)
			for _, w := range group {
				if w.fn == nil {
					w.answer(result{err: err})
				}
			}
		}
		clear(group)
	}
}

// answer hands w its result: the caller reads r once done says so.
func (w *write) answer(r result) {
	w.r = r
	w.done <- struct{}{}
}

// commit runs group's writes and appends their changes to the log; if
// that fails, none of them happened and each gets the error. It sets the
// result of every write with a fn (results needs no clearing before).
func (s *Store) commit(group []*write, results []result) {
	t := &s.t
	t.now = time.Now()
	t.nowMs = t.now.UnixMilli()
	clear(t.staged)
	if cap(t.frame) > 4<<20 {
		t.frame = nil // after a group of large values
	}
	t.frame = startFrame(t.frame)
	seq := s.seq
	for i, w := range group {
		if w.fn != nil {
			results[i] = w.fn(t)
		}
	}
	if t.read != nil {
		t.read.Rollback()
		t.read = nil
	}
	if len(t.staged) == 0 {
		return
	}
	err := s.refuse
	if err == nil {
		if err = s.log.append(t.frame); err != nil {
			err = s.commitError(err)
		}
	}
	if err != nil {
		s.seq = seq
		for i := range group {
			results[i] = result{err: err}
		}
		return
	}
	s.mu.Lock()
	for k, rec := range t.staged {
		s.setPending(k, rec)
	}
	s.mu.Unlock()
}

// setPending makes rec key's pending change (nil: deleted), keeping
// pendingBytes; the writer calls it holding mu, or Open before there are
// readers.
func (s *Store) setPending(key string, rec []byte) {
	if old, ok := s.pending[key]; ok {
		s.pendingBytes -= len(key) + len(old) + pendingCost
	}
	s.pending[key] = rec
	s.pendingBytes += len(key) + len(rec) + pendingCost
}

func (s *Store) commitError(err error) error {
	return fmt.Errorf("%w: write %s: %w", store.ErrUnavailable, s.path, err)
}

// refusal is what writes fail with once the checkpoints fail (with err)
// and too much waits for one.
func (s *Store) refusal(err error) error {
	return fmt.Errorf("%w: checkpoint %s: %w: writes are refused until one succeeds (%.1f MiB wait in %s, %.1f MiB in memory): make room on its disk",
		store.ErrUnavailable, s.path, err, float64(s.log.size)/(1<<20), s.log.path, float64(s.pendingBytes)/(1<<20))
}

// lookup returns key's record as t sees it (nil: none); it aliases bbolt's
// memory, valid until the group ends.
func (t *txn) lookup(key string) ([]byte, error) {
	if rec, ok := t.staged[key]; ok {
		return rec, nil
	}
	if rec, ok := t.s.pending[key]; ok {
		return rec, nil
	}
	kv, err := t.kv()
	if err != nil {
		return nil, err
	}
	return kv.Get([]byte(key)), nil
}

// kv returns the database's kv bucket, in the read transaction the group
// shares, begun by the first read that needs it.
func (t *txn) kv() (*bolt.Bucket, error) {
	if t.read == nil {
		tx, err := t.s.db.Begin(false)
		if err != nil {
			return nil, fmt.Errorf("boltstore: read %s: %w", t.s.path, err)
		}
		t.read = tx
	}
	return t.read.Bucket(bucketKV), nil
}

// live returns key's record if it is there and not expired.
func (t *txn) live(key string) (record, bool, error) {
	b, err := t.lookup(key)
	if err != nil {
		return record{}, false, err
	}
	r, ok := decodeRecord(b)
	if !ok || r.expired(t.nowMs) {
		return record{}, false, nil
	}
	return r, true, nil
}

// put writes rec, made by newRecord, to key with a new version.
func (t *txn) put(key string, rec []byte, expires time.Time) {
	t.s.seq++
	setHeader(rec, t.s.seq, expires)
	t.stage(key, rec)
}

func (t *txn) stage(key string, rec []byte) {
	t.staged[key] = rec
	t.frame = appendPut(t.frame, key, rec)
}

func (t *txn) delete(key string) {
	t.staged[key] = nil
	t.frame = appendDelete(t.frame, key)
}

// checkpoint writes the pending changes into the database in one commit
// (and with sweep, removes up to maxSweep expired keys in it, returning how
// many), then empties the log. If the commit fails, the changes stay
// pending, and the log keeps them.
func (s *Store) checkpoint(sweep bool) (int, error) {
	if len(s.pending) == 0 && !sweep && s.log.size == int64(len(logHeader)) {
		return 0, nil
	}
	swept := 0
	s.checkpoints++
	err := s.db.Update(func(tx *bolt.Tx) error {
		kv, expiry := tx.Bucket(bucketKV), tx.Bucket(bucketExpiry)
		// bbolt copies the keys it keeps: one buffer serves them all.
		var key, ek []byte
		for k, rec := range s.pending {
			key = append(key[:0], k...)
			// Its old entry in the expiry index, if any, goes.
			if old, ok := decodeRecord(kv.Get(key)); ok && old.expires != 0 {
				ek = appendExpiryKey(ek[:0], old.expires, key)
				if err := expiry.Delete(ek); err != nil {
					return err
				}
			}
			if rec == nil {
				if err := kv.Delete(key); err != nil {
					return err
				}
				continue
			}
			if err := kv.Put(key, rec); err != nil {
				return err
			}
			if r, _ := decodeRecord(rec); r.expires != 0 {
				ek = appendExpiryKey(ek[:0], r.expires, key)
				if err := expiry.Put(ek, nil); err != nil {
					return err
				}
			}
		}
		if s.checkpointFault != nil {
			return s.checkpointFault
		}
		if s.seq > kv.Sequence() {
			if err := kv.SetSequence(s.seq); err != nil {
				return err
			}
		}
		if sweep {
			var err error
			swept, err = sweepTx(kv, expiry, time.Now().UnixMilli())
			return err
		}
		return nil
	})
	if err != nil {
		s.refuseIfFull(err)
		return 0, s.commitError(err)
	}
	s.refuse, s.retryWait = nil, 0
	if len(s.pending) > 0 {
		s.mu.Lock()
		if len(s.pending) > 1024 {
			s.pending = map[string][]byte{} // a large map's buckets stay with clear
		} else {
			clear(s.pending)
		}
		s.pendingBytes = 0
		s.mu.Unlock()
	}
	if s.log.size > int64(len(logHeader)) {
		if err := s.log.reset(); err != nil {
			// The log still holds what is now in the database: replaying
			// it writes the same records. It is cut at the next
			// checkpoint, pending changes or not.
			s.refuseIfFull(err)
			return swept, err
		}
	}
	return swept, nil
}

// refuseIfFull refuses writes from now until a checkpoint succeeds if the
// one that just failed with err left too much waiting: in memory, or in the
// log.
func (s *Store) refuseIfFull(err error) {
	if s.pendingBytes > refusePendingBytes || s.log.size > s.refuseLogBytes {
		s.refuse = s.refusal(err)
	}
	if s.refuse != nil {
		s.retryWait = min(max(2*s.retryWait, firstRetry), lastRetry)
		s.retryAt = time.Now().Add(s.retryWait)
	}
}

// maintain checkpoints and sweeps; a sweep that hit its bound goes again
// at once.
func (s *Store) maintain() {
	for {
		n, err := s.checkpoint(true)
		if err != nil || n < maxSweep {
			return // the disk refuses writes: try at the next tick
		}
	}
}

// sweepTx removes up to maxSweep expired keys and returns how many.
func sweepTx(kv, expiry *bolt.Bucket, nowMs int64) (int, error) {
	// Collect first: deleting under a bbolt cursor makes Next skip.
	var expired [][]byte
	c := expiry.Cursor()
	for k, _ := c.First(); k != nil && len(expired) < maxSweep; k, _ = c.Next() {
		if len(k) < 8 || int64(beUint64(k)) > nowMs {
			break
		}
		expired = append(expired, bytes.Clone(k))
	}
	for _, k := range expired {
		if err := kv.Delete(k[8:]); err != nil {
			return 0, err
		}
		if err := expiry.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(expired), nil
}
