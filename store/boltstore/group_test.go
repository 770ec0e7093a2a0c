package boltstore_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/broodhq/brood/store"
	"github.com/broodhq/brood/store/boltstore"
)

// The writes of a Group see each other, as the same writes one by one
// would, and are in the store (and the file) once Group returns.
func TestGroupWritesCommitTogether(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s := open(t, path, boltstore.Options{})
	ctx := context.Background()
	var ns []int64
	var swapped bool
	err := s.Group(ctx, func(w store.Store) {
		for range 3 {
			n, err := w.Incr(ctx, "n", 2, 0)
			if err != nil {
				t.Errorf("Incr in group: %v", err)
			}
			ns = append(ns, n)
		}
		if err := w.Set(ctx, "k", []byte("v1"), 0); err != nil {
			t.Errorf("Set in group: %v", err)
		}
		it, ok, err := w.Lookup(ctx, "k")
		if err != nil || !ok {
			t.Fatalf("Lookup in group = %v, %v; want the Set before it", ok, err)
		}
		swapped, err = w.CompareAndSet(ctx, "k", []byte("v2"), it.Version, 0)
		if err != nil {
			t.Errorf("CompareAndSet in group: %v", err)
		}
		if _, err := w.Incr(ctx, "k", 1, 0); err == nil {
			t.Error("Incr of a non-integer in a group succeeded")
		}
	})
	if err != nil {
		t.Fatalf("Group: %v", err)
	}
	if want := []int64{2, 4, 6}; len(ns) != 3 || ns[0] != want[0] || ns[1] != want[1] || ns[2] != want[2] {
		t.Errorf("Incr results %v, want %v", ns, want)
	}
	if !swapped {
		t.Error("CompareAndSet with the version just written failed")
	}
	s.Close()

	s = open(t, path, boltstore.Options{})
	if v, ok, err := s.Get(ctx, "k"); err != nil || !ok || string(v) != "v2" {
		t.Errorf("after reopen k = %q, %v, %v; want v2", v, ok, err)
	}
	if n, err := s.Incr(ctx, "n", 0, 0); err != nil || n != 6 {
		t.Errorf("after reopen n = %d, %v; want 6", n, err)
	}
}
