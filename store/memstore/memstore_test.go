package memstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/broodhq/brood/store"
	"github.com/broodhq/brood/store/memstore"
	"github.com/broodhq/brood/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s := memstore.New()
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestExpiredKeysAreSwept(t *testing.T) {
	s := memstore.New()
	defer s.Close()
	for _, k := range []string{"a", "b", "c"} {
		if err := s.Set(context.Background(), k, []byte("v"), 10*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	s.Set(context.Background(), "live", nil, 0)
	deadline := time.Now().Add(10 * memstore.SweepEvery)
	for s.Len() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d keys held %s after they expired; want 1 (the live one)", s.Len(), 10*memstore.SweepEvery)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
