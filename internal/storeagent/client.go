package storeagent

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/broodhq/brood/messenger"
	"github.com/broodhq/brood/store"
)

// Client is a worker's store.Store: every operation is one call to the
// agent (messenger.CallAgent), which answers from its store. While the agent
// restarts, calls wait for the new one (bounded by their context).
//
// Operations started while the Client's previous calls are on their way go
// together in the next call (batch.go), so that under load the hops through
// the master and the agent are shared instead of paid per operation.
type Client struct {
	batches batcher
	closed  atomic.Bool
}

var _ store.Store = (*Client)(nil)

// NewClient returns the Client that reaches the agent's store through m.
func NewClient(m *messenger.Messenger) *Client {
	return newClient(func(ctx context.Context, batch []byte) ([]byte, error) {
		// One allocation for the batch and its reply: a Bytes passed as
		// an any, and a reply decoded into, cost one each apart.
		c := &callData{batch: batch}
		err := m.CallAgent(ctx, Action, &c.batch, &c.reply)
		return c.reply, err
	})
}

// callData is a call's data and its reply.
type callData struct{ batch, reply messenger.Bytes }

// newClient returns a Client whose batches go through call.
func newClient(call func(ctx context.Context, batch []byte) ([]byte, error)) *Client {
	return &Client{batches: batcher{call: call}}
}

// call sends one request. A List goes alone: its reply may be a large page.
func (c *Client) call(ctx context.Context, req *request) ([]byte, error) {
	if req.op != opList {
		return c.batches.submitRequest(ctx, req)
	}
	raw, err := c.batches.call(ctx, encodeBatch([][]byte{req.encode()}))
	if err != nil {
		return nil, err
	}
	replies, err := decodeBatch(raw)
	if err == nil && len(replies) != 1 {
		err = fmt.Errorf("decode store reply: %d replies for 1 request", len(replies))
	}
	if err != nil {
		return nil, err
	}
	return replies[0], nil
}

// do sends req and returns the agent's reply, with the store's error as its
// sentinel.
func (c *Client) do(ctx context.Context, req *request) (response, error) {
	if c.closed.Load() {
		return response{}, store.ErrClosed
	}
	raw, err := c.call(ctx, req)
	if _, ok := ctx.Deadline(); !ok && err != nil {
		// Retries below must end too, as each call does. (Only now: a
		// timer per operation is a measurable part of its cost.)
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, messenger.DefaultCallTimeout)
		defer cancel()
	}
	for wait := 10 * time.Millisecond; errors.Is(err, messenger.ErrTargetGone) && req.op.idempotent(); wait = min(2*wait, 500*time.Millisecond) {
		// The call reached an agent that died: the next call waits for
		// its successor. An operation that may run twice is tried again.
		select {
		case <-ctx.Done():
			return response{}, fmt.Errorf("%w: the agent's store: %w (then %w)", store.ErrUnavailable, err, ctx.Err())
		case <-time.After(wait):
		}
		raw, err = c.call(ctx, req)
	}
	switch {
	case errors.Is(err, messenger.ErrClosed):
		return response{}, fmt.Errorf("%w: %w", store.ErrClosed, err)
	case err != nil:
		return response{}, fmt.Errorf("%w: the agent's store: %w", store.ErrUnavailable, err)
	}
	r, err := decodeResponse(raw, req.key)
	if err != nil {
		return response{}, fmt.Errorf("%w: the agent's store: %w", store.ErrUnavailable, err)
	}
	return r, r.err
}

// Get implements store.Store.
func (c *Client) Get(ctx context.Context, key string) ([]byte, bool, error) {
	it, ok, err := c.lookup(ctx, opGet, key)
	return it.Value, ok, err
}

// Lookup implements store.Store.
func (c *Client) Lookup(ctx context.Context, key string) (store.Item, bool, error) {
	return c.lookup(ctx, opLookup, key)
}

func (c *Client) lookup(ctx context.Context, o op, key string) (store.Item, bool, error) {
	if err := store.CheckKey(key); err != nil {
		return store.Item{}, false, err
	}
	r, err := c.do(ctx, &request{op: o, key: key})
	if err != nil || !r.ok || !r.hasItem {
		return store.Item{}, false, err
	}
	return r.item, true, nil
}

// Set implements store.Store.
func (c *Client) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := store.CheckWrite(key, value, ttl); err != nil {
		return err
	}
	_, err := c.do(ctx, &request{op: opSet, key: key, value: value, ttl: ttl})
	return err
}

// Delete implements store.Store.
func (c *Client) Delete(ctx context.Context, key string) error {
	if err := store.CheckKey(key); err != nil {
		return err
	}
	_, err := c.do(ctx, &request{op: opDelete, key: key})
	return err
}

// Incr implements store.Store.
func (c *Client) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := store.CheckWrite(key, nil, ttl); err != nil {
		return 0, err
	}
	r, err := c.do(ctx, &request{op: opIncr, key: key, delta: delta, ttl: ttl})
	return r.n, err
}

// SetIfAbsent implements store.Store.
func (c *Client) SetIfAbsent(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := store.CheckWrite(key, value, ttl); err != nil {
		return false, err
	}
	r, err := c.do(ctx, &request{op: opSetIfAbsent, key: key, value: value, ttl: ttl})
	return r.ok, err
}

// CompareAndSet implements store.Store.
func (c *Client) CompareAndSet(ctx context.Context, key string, value []byte, version uint64, ttl time.Duration) (bool, error) {
	if err := store.CheckWrite(key, value, ttl); err != nil {
		return false, err
	}
	r, err := c.do(ctx, &request{op: opCompareAndSet, key: key, value: value, version: version, ttl: ttl})
	return r.ok, err
}

// List implements store.Store.
func (c *Client) List(ctx context.Context, prefix, after string, limit int) ([]store.Item, error) {
	if err := store.CheckList(prefix, after, limit); err != nil {
		return nil, err
	}
	r, err := c.do(ctx, &request{op: opList, key: prefix, after: after, limit: limit})
	return r.list(), err
}

// Close makes this Client refuse further calls; the agent's store stays
// open for the others.
func (c *Client) Close() error {
	c.closed.Store(true)
	return nil
}
