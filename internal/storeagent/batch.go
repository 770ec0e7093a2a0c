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
	// more than one, so that the next batch is not held behind a slow one.
	maxInflight = 2
	// maxBatch and maxBatchBytes bound one batch: its reply must stay far
	// under the messenger's size limit (16 MiB by default).
	maxBatch      = 256
	maxBatchBytes = 2 << 20
)

// batcher sends operations in batches without a goroutine of its own: the
// caller whose operation finds a free slot sends it; operations that come
// while every slot is busy wait together, and when a call returns, the
// first of them takes the slot and sends them all.
type batcher struct {
	call func(ctx context.Context, batch []byte) ([]byte, error)

	mu       sync.Mutex
	inflight int
	pending  []*queued
}

type queued struct {
	ctx  context.Context
	req  []byte
	wake chan wake  // buffered: the sender never waits
	self [1]*queued // the batch of one it is when it goes alone
}

// wake is what a queued operation is woken with: the batch it is to send
// (it leads the next call), or else its outcome. It gets one, or a batch
// and then its outcome: one channel for both costs one allocation less.
type wake struct {
	lead []*queued
	raw  []byte
	err  error
}

// submit sends req, alone or with others, and returns its reply.
func (b *batcher) submit(ctx context.Context, req []byte) ([]byte, error) {
	q := &queued{ctx: ctx, req: req, wake: make(chan wake, 1)}
	b.mu.Lock()
	if b.inflight < maxInflight {
		b.inflight++
		b.mu.Unlock()
		q.self[0] = q
		b.send(q.self[:])
	} else {
		b.pending = append(b.pending, q)
		b.mu.Unlock()
	}
	for {
		select {
		case w := <-q.wake:
			if w.lead == nil {
				return w.raw, w.err
			}
			b.send(w.lead)
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
			go b.send(w.lead) // ends with the call's own deadline
		}
	default:
	}
}

// send makes one call for batch, hands every operation its outcome, then
// passes the slot to the operations waiting, if any.
func (b *batcher) send(batch []*queued) {
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
		b.inflight--
		return
	}
	n, size := 0, 0
	for n < len(b.pending) && n < maxBatch && (n == 0 || size+len(b.pending[n].req) <= maxBatchBytes) {
		size += len(b.pending[n].req)
		n++
	}
	next := slices.Clone(b.pending[:n])
	b.pending = slices.Delete(b.pending, 0, n)
	next[0].wake <- wake{lead: next}
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
