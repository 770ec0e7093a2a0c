package storeagent

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/broodhq/brood/messenger"
	"github.com/broodhq/brood/store"
)

// pageBytes bounds the items of one List reply, far under the messenger's
// 16 MiB default: List may return fewer items than asked, and callers page
// on.
const pageBytes = 4 << 20

// Serve answers the workers' store calls on the agent's messenger from s.
// The agent calls it before its WithAgent hooks, so that the store is
// served as soon as the agent is ready.
func Serve(m *messenger.Messenger, s store.Store) {
	m.Handle(Action, func(ctx context.Context, msg messenger.Message) (any, error) {
		c := new(callData) // one allocation for both (client.go)
		if err := msg.Decode(&c.batch); err != nil {
			return nil, err
		}
		var err error
		c.reply, err = handleBatch(ctx, s, c.batch)
		return &c.reply, err
	})
}

// grouper is a store that can put several writes into one commit
// (boltstore.Store.Group).
type grouper interface {
	Group(ctx context.Context, fn func(w store.Store)) error
}

// handleBatch runs the requests of a batch (batch.go) at once, so that the
// writes among them go into the same commit, and returns their replies in
// order.
func handleBatch(ctx context.Context, s store.Store, raw []byte) ([]byte, error) {
	reqs, err := decodeBatch(raw)
	if err != nil {
		return nil, err
	}
	replies := make([]response, len(reqs))
	g, ok := s.(grouper)
	switch {
	case len(reqs) == 1:
		replies[0] = handle(ctx, s, reqs[0])
	case ok:
		handleGroup(ctx, s, g, reqs, replies)
	default:
		var wg sync.WaitGroup
		for i, req := range reqs {
			wg.Go(func() { replies[i] = handle(ctx, s, req) })
		}
		wg.Wait()
	}
	return encodeReplies(replies), nil
}

// encodeReplies encodes a batch of replies (batch.go) in one buffer.
func encodeReplies(rs []response) []byte {
	size := binary.MaxVarintLen64
	for i := range rs {
		size += binary.MaxVarintLen64 + rs[i].size()
	}
	b := binary.AppendUvarint(make([]byte, 0, size), uint64(len(rs)))
	var scratch [512]byte
	one := scratch[:0]
	for i := range rs {
		one = rs[i].appendTo(one[:0])
		b = appendBytes(b, one)
	}
	return b
}

// handleGroup runs the writes of reqs in one commit of g, handed over
// together, instead of one write each that the store's writer may pick up
// over several commits; the reads run outside it, so that they work when
// the store refuses writes.
func handleGroup(ctx context.Context, s store.Store, g grouper, reqs [][]byte, replies []response) {
	var writes []int
	for i, req := range reqs {
		if len(req) > 0 && isWrite(op(req[0])) {
			writes = append(writes, i)
		} else {
			replies[i] = handle(ctx, s, req)
		}
	}
	if len(writes) == 0 {
		return
	}
	// fn answers into a slice of its own: a Group whose ctx ends returns
	// at once, and its fn may still run afterwards (boltstore), while the
	// replies are being encoded. Only a Group that returned nil has run
	// fn to its end.
	answers := make([]response, len(writes))
	err := g.Group(ctx, func(w store.Store) {
		for k, i := range writes {
			answers[k] = handle(ctx, w, reqs[i])
		}
	})
	for k, i := range writes {
		if err != nil {
			// Nothing of the group was committed (or, its ctx ended,
			// nothing is known of it): its replies are void.
			replies[i] = response{err: err}
		} else {
			replies[i] = answers[k]
		}
	}
}

// isWrite tells the operations that change the store.
func isWrite(o op) bool {
	switch o {
	case opSet, opDelete, opIncr, opSetIfAbsent, opCompareAndSet:
		return true
	}
	return false
}

// handle runs one encoded request against s and returns the reply.
// Errors, the store's included, travel in the reply, so that the client
// gets its sentinels back.
func handle(ctx context.Context, s store.Store, raw []byte) response {
	req, err := decodeRequest(raw)
	if err != nil {
		return response{err: err}
	}
	var r response
	switch req.op {
	case opGet, opLookup:
		r.item, r.ok, r.err = s.Lookup(ctx, req.key)
		r.hasItem = r.ok
	case opSet:
		r.err = s.Set(ctx, req.key, req.value, req.ttl)
	case opDelete:
		r.err = s.Delete(ctx, req.key)
	case opIncr:
		r.n, r.err = s.Incr(ctx, req.key, req.delta, req.ttl)
	case opSetIfAbsent:
		r.ok, r.err = s.SetIfAbsent(ctx, req.key, req.value, req.ttl)
	case opCompareAndSet:
		r.ok, r.err = s.CompareAndSet(ctx, req.key, req.value, req.version, req.ttl)
	case opList:
		var items []store.Item
		items, r.err = s.List(ctx, req.key, req.after, req.limit)
		size := 0
		for i, it := range items {
			size += len(it.Key) + len(it.Value)
			if size > pageBytes && i > 0 {
				items = items[:i]
				break
			}
		}
		r.items = items
	default:
		r.err = errUnknownOp(req.op)
	}
	return r
}

type errUnknownOp op

func (e errUnknownOp) Error() string {
	return fmt.Sprintf("store: unknown operation %d: the worker and the agent run different brood versions", byte(e))
}
