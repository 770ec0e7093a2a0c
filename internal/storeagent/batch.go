package storeagent

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/broodhq/brood/messenger"
)

// A call carries a batch: the operations a worker started while its
// previous calls were on their way, encoded one after another,
//
//	count uvarint | (length uvarint | request)...
//
// and the reply holds their replies in the same order. One call costs the
// same hops through the master and the agent whether it holds one
// operation or a hundred, so under load the hops are shared.
const (
	// maxInflight is how many calls a worker keeps on their way at once:
	// more than one, so that the next batch is not held behind a slow one
	// (a write waiting on a commit the disk is slow to take, a stalled
	// agent). But a second call goes out only once the first has been out
	// for slowCall: calls that return sooner keep one on its way at a time,
	// so the operations that come meanwhile all go in the next. Under load
	// that makes batches of about ten instead of six, and a call's hops
	// (two processes' reads, writes and wake-ups) cost more than the
	// operations in it (storebench: 9.2-11.7 operations a call instead of
	// 5.9-6.6, 2-8% less CPU a request).
	maxInflight = 2
	slowCall    = time.Millisecond
	// maxBatch and maxBatchBytes bound one batch: its reply must stay far
	// under the messenger's size limit (16 MiB by default).
	maxBatch      = 256
	maxBatchBytes = 2 << 20
)

// batcher sends operations in batches without a goroutine of its own: the
// caller whose operation finds a free slot sends it; operations that come
// while no slot may be used (both busy, or one busy with a call not yet
// slow) wait together, and when a call returns, or the one out turns
// slow, the first of them takes the slot and sends them all.
type batcher struct {
	call func(ctx context.Context, batch []byte) ([]byte, error)
	slow time.Duration // slowCall; tests shorten it

	mu      sync.Mutex
	out     [maxInflight]time.Time // when the call in each slot went out; zero: free
	pending []*queued
	timer   *time.Timer // sends the pending batch when the call out turns slow
	armed   bool
}

type queued struct {
	ctx  context.Context
	req  []byte
	wake chan wake  // buffered: the sender never waits
	self [1]*queued // the batch of one it is when it goes alone
}

// queuedPool recycles queued operations, their wake channel and their
// request's buffer: two allocations an operation less, three with the
// buffer (BenchmarkPath). A queued may be put back only by its caller,
// and only once it received its outcome: the outcome is the last thing
// sent on wake (a lead, if any, comes before it) and the sender touches
// the queued no more after sending it, while the batch it was sent in
// was encoded before its call, so no one holds its req. An operation
// whose caller gave up is never put back: the call of its batch may
// still be on its way, to send an outcome no one reads.
var queuedPool = sync.Pool{New: func() any { return &queued{wake: make(chan wake, 1)} }}

// maxPooledReq bounds the request buffers kept with pooled operations, so
// that one large value does not stay held.
const maxPooledReq = 16 << 10

func getQueued(ctx context.Context) *queued {
	q := queuedPool.Get().(*queued)
	q.ctx = ctx
	return q
}

func putQueued(q *queued) {
	q.ctx = nil
	q.self[0] = nil
	if cap(q.req) > maxPooledReq {
		q.req = nil
	}
	q.req = q.req[:0]
	queuedPool.Put(q)
}

// wake is what a queued operation is woken with: the batch it is to send
// (it leads the next call), or else its outcome. It gets one, or a batch
// and then its outcome: one channel for both costs one allocation less.
type wake struct {
	lead []*queued
	slot int // lead's
	raw  []byte
	err  error
}

// slot returns a free slot for a call going out at now, with wait 0; or
// else how long until the call out turns slow and a slot frees for the
// next (wait < 0: none will, every slot is taken). b.mu is held.
func (b *batcher) slot(now time.Time) (slot int, wait time.Duration) {
	free, oldest := -1, time.Time{}
	for i, t := range b.out {
		switch {
		case t.IsZero():
			free = i
		case oldest.IsZero() || t.Before(oldest):
			oldest = t
		}
	}
	switch {
	case free < 0:
		return -1, -1
	case oldest.IsZero():
		return free, 0
	}
	slow := b.slow
	if slow == 0 {
		slow = slowCall
	}
	if wait := oldest.Add(slow).Sub(now); wait > 0 {
		return free, wait
	}
	return free, 0
}

// arm starts the timer that sends the pending batch in a second slot if
// the call out has not returned by then. b.mu is held.
func (b *batcher) arm(wait time.Duration) {
	b.armed = true
	if b.timer == nil {
		b.timer = time.AfterFunc(wait, b.slowed)
	} else {
		b.timer.Reset(wait)
	}
}

// slowed sends the pending batch if a slot is free now that the call out
// has been out for slowCall; if the call returned meanwhile, it has taken
// the batch with it and there is nothing to do.
func (b *batcher) slowed() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.armed = false
	if len(b.pending) == 0 {
		return
	}
	now := time.Now()
	slot, wait := b.slot(now)
	switch {
	case wait > 0:
		b.arm(wait)
	case wait == 0:
		b.out[slot] = now
		b.lead(slot)
	}
}

// lead hands the next batch of pending operations to the first of them,
// which sends it in slot. b.mu is held.
func (b *batcher) lead(slot int) {
	n, size := 0, 0
	for n < len(b.pending) && n < maxBatch && (n == 0 || size+len(b.pending[n].req) <= maxBatchBytes) {
		size += len(b.pending[n].req)
		n++
	}
	next := slices.Clone(b.pending[:n])
	b.pending = slices.Delete(b.pending, 0, n)
	next[0].wake <- wake{lead: next, slot: slot}
}

// submit sends req, alone or with others, and returns its reply.
func (b *batcher) submit(ctx context.Context, req []byte) ([]byte, error) {
	q := getQueued(ctx)
	q.req = append(q.req, req...)
	return b.run(q)
}

// submitRequest sends r, encoded in a recycled buffer, as submit does.
func (b *batcher) submitRequest(ctx context.Context, r *request) ([]byte, error) {
	q := getQueued(ctx)
	q.req = r.appendTo(q.req)
	return b.run(q)
}

// run sends q, alone or with others, and returns its reply; q goes back to
// queuedPool if its caller got the reply (or the call's error).
func (b *batcher) run(q *queued) ([]byte, error) {
	ctx := q.ctx
	b.mu.Lock()
	now := time.Now()
	if slot, wait := b.slot(now); wait == 0 {
		b.out[slot] = now
		b.mu.Unlock()
		q.self[0] = q
		b.send(slot, q.self[:])
	} else {
		b.pending = append(b.pending, q)
		if wait > 0 && !b.armed {
			b.arm(wait)
		}
		b.mu.Unlock()
	}
	for {
		select {
		case w := <-q.wake:
			if w.lead == nil {
				putQueued(q)
				return w.raw, w.err
			}
			b.send(w.slot, w.lead)
		case <-ctx.Done():
			b.abandon(q)
			return nil, ctx.Err()
		}
	}
}

// abandon takes q, whose caller gives up, out of the queue; if q was just
// given a batch to send, the batch is sent anyway, for the others in it.
func (b *batcher) abandon(q *queued) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if i := slices.Index(b.pending, q); i >= 0 {
		b.pending = slices.Delete(b.pending, i, i+1)
		return
	}
	select {
	case w := <-q.wake:
		if w.lead != nil {
			go b.send(w.slot, w.lead) // ends with the call's own deadline
		}
	default:
	}
}

// send makes one call for batch in slot, hands every operation its
// outcome, then passes the slot to the operations waiting, if any.
func (b *batcher) send(slot int, batch []*queued) {
	ctx, cancel := batchContext(batch)
	size := binary.MaxVarintLen64
	for _, q := range batch {
		size += binary.MaxVarintLen64 + len(q.req)
	}
	enc := binary.AppendUvarint(make([]byte, 0, size), uint64(len(batch)))
	for _, q := range batch {
		enc = appendBytes(enc, q.req)
	}
	raw, err := b.call(ctx, enc)
	cancel()
	var replies [][]byte
	if err == nil {
		if replies, err = decodeBatch(raw); err == nil && len(replies) != len(batch) {
			err = fmt.Errorf("decode store reply: %d replies for %d requests", len(replies), len(batch))
		}
	}
	for i, q := range batch {
		if err != nil {
			q.wake <- wake{err: err}
		} else {
			q.wake <- wake{raw: replies[i]}
		}
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.pending) == 0 {
		b.out[slot] = time.Time{}
		return
	}
	b.out[slot] = time.Now()
	b.lead(slot)
}

// batchContext lasts as long as the latest deadline in the batch (callers
// give up on their own): no one caller's end may cut the others' call.
func batchContext(batch []*queued) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, q := range batch {
		d, ok := q.ctx.Deadline()
		if !ok {
			latest = time.Now().Add(messenger.DefaultCallTimeout)
			break
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(context.Background(), latest)
}

func encodeBatch(items [][]byte) []byte {
	size := binary.MaxVarintLen64
	for _, it := range items {
		size += binary.MaxVarintLen64 + len(it)
	}
	b := binary.AppendUvarint(make([]byte, 0, size), uint64(len(items)))
	for _, it := range items {
		b = appendBytes(b, it)
	}
	return b
}

var errBatch = errors.New("decode store batch")

func decodeBatch(raw []byte) ([][]byte, error) {
	d := decoder{b: raw}
	n := d.uvarint()
	if n > maxBatch {
		return nil, fmt.Errorf("%w: %d items, limit %d", errBatch, n, maxBatch)
	}
	items := make([][]byte, 0, n)
	for range n {
		items = append(items, d.bytes())
	}
	if err := d.end("batch"); err != nil {
		return nil, err
	}
	return items, nil
}
