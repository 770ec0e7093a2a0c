package scsstore

import (
	"context"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/broodhq/brood/store"
)

// Prefix starts the key of every session.
const Prefix = "scs:session:"

// Timeout bounds the calls of the methods that take no context.
const Timeout = 5 * time.Second

// Store is an scs session store over a store.Store.
type Store struct {
	s store.Store
}

var (
	_ scs.Store            = (*Store)(nil)
	_ scs.CtxStore         = (*Store)(nil)
	_ scs.IterableStore    = (*Store)(nil)
	_ scs.IterableCtxStore = (*Store)(nil)
)

// New returns an scs store keeping sessions in s.
func New(s store.Store) *Store { return &Store{s: s} }

func bounded() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), Timeout)
}

// FindCtx implements scs.CtxStore.
func (st *Store) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	return st.s.Get(ctx, Prefix+token)
}

// CommitCtx implements scs.CtxStore: the session expires at expiry. One
// already expired is deleted; one beyond store.MaxTTL is kept that long.
func (st *Store) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	ttl := time.Until(expiry)
	if ttl < store.MinTTL {
		return st.s.Delete(ctx, Prefix+token)
	}
	return st.s.Set(ctx, Prefix+token, b, min(ttl, store.MaxTTL))
}

// DeleteCtx implements scs.CtxStore.
func (st *Store) DeleteCtx(ctx context.Context, token string) error {
	return st.s.Delete(ctx, Prefix+token)
}

// AllCtx implements scs.IterableCtxStore: every live session, paging
// through the store by prefix.
func (st *Store) AllCtx(ctx context.Context) (map[string][]byte, error) {
	all := map[string][]byte{}
	for after := ""; ; {
		page, err := st.s.List(ctx, Prefix, after, store.MaxListLimit)
		if err != nil {
			return nil, err
		}
		if len(page) == 0 {
			return all, nil
		}
		for _, it := range page {
			all[strings.TrimPrefix(it.Key, Prefix)] = it.Value
		}
		after = page[len(page)-1].Key
	}
}

// Find implements scs.Store.
func (st *Store) Find(token string) ([]byte, bool, error) {
	ctx, cancel := bounded()
	defer cancel()
	return st.FindCtx(ctx, token)
}

// Commit implements scs.Store.
func (st *Store) Commit(token string, b []byte, expiry time.Time) error {
	ctx, cancel := bounded()
	defer cancel()
	return st.CommitCtx(ctx, token, b, expiry)
}

// Delete implements scs.Store.
func (st *Store) Delete(token string) error {
	ctx, cancel := bounded()
	defer cancel()
	return st.DeleteCtx(ctx, token)
}

// All implements scs.IterableStore.
func (st *Store) All() (map[string][]byte, error) {
	ctx, cancel := bounded()
	defer cancel()
	return st.AllCtx(ctx)
}
