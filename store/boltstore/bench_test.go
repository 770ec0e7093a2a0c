package boltstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/broodhq/brood/store/boltstore"
)

// go test -run '^$' -bench . ./store/boltstore/: Incr from many goroutines,
// as the agent sees a cluster's load, with and without Options.Sync.
func BenchmarkIncr(b *testing.B) {
	for _, sync := range []bool{false, true} {
		b.Run(fmt.Sprint("sync=", sync), func(b *testing.B) {
			s, err := boltstore.Open(filepath.Join(b.TempDir(), "store.db"), boltstore.Options{Sync: sync})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var n atomic.Int64
			b.SetParallelism(16) // 16 goroutines per CPU waiting on commits
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				key := fmt.Sprint("k", n.Add(1)%64)
				for pb.Next() {
					if _, err := s.Incr(context.Background(), key, 1, 0); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkSetSequential(b *testing.B) {
	for _, sync := range []bool{false, true} {
		b.Run(fmt.Sprint("sync=", sync), func(b *testing.B) {
			s, err := boltstore.Open(filepath.Join(b.TempDir(), "store.db"), boltstore.Options{Sync: sync})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			v := make([]byte, 200)
			for i := 0; b.Loop(); i++ {
				if err := s.Set(context.Background(), fmt.Sprint("session:", i%10000), v, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
