package storeagent

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/broodhq/brood/messenger"
	"github.com/broodhq/brood/store/boltstore"
)

// go test -run '^$' -bench . -benchmem ./internal/storeagent/: the store
// path of a request without the messenger: the client's batching and
// encoding, the JSON string the messenger makes of a batch, the agent's
// decoding, its store and back, from many goroutines as a worker's
// handlers are. Its allocations are what a profile of the agent and the
// workers does not show apart.
func BenchmarkPath(b *testing.B) {
	s, err := boltstore.Open(filepath.Join(b.TempDir(), "store.db"), boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := newClient(func(ctx context.Context, batch []byte) ([]byte, error) {
		data, _ := messenger.Bytes(batch).MarshalJSON() // as the messenger carries it
		var raw messenger.Bytes
		if err := raw.UnmarshalJSON(data); err != nil {
			return nil, err
		}
		reply, err := handleBatch(ctx, s, raw)
		if err != nil {
			return nil, err
		}
		data, _ = messenger.Bytes(reply).MarshalJSON()
		var r messenger.Bytes
		err = r.UnmarshalJSON(data)
		return r, err
	})
	ctx := context.Background()
	value := make([]byte, 200)
	var n atomic.Int64
	b.Run("incr", func(b *testing.B) {
		b.SetParallelism(12)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Incr(ctx, "visits", 1, 0); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("session", func(b *testing.B) {
		b.SetParallelism(12)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			key := fmt.Sprintf("scs:session:%043d", n.Add(1))
			for pb.Next() {
				if _, _, err := c.Get(ctx, key); err != nil {
					b.Error(err)
					return
				}
				if err := c.Set(ctx, key, value, 3600e9); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
