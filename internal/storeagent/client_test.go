package storeagent

import (
	"context"
	"testing"

	"github.com/broodhq/brood/store"
	"github.com/broodhq/brood/store/memstore"
	"github.com/broodhq/brood/store/storetest"
)

// TestCodecConformance runs the conformance suite through the client's
// encoding, the server's decoding and back, without the messenger between
// them (the cluster tests cover that).
func TestCodecConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		backend := memstore.New()
		t.Cleanup(func() { backend.Close() })
		c := newClient(func(ctx context.Context, batch []byte) ([]byte, error) {
			return handleBatch(ctx, backend, batch)
		})
		return closeBoth{c, backend}
	})
}

// closeBoth closes the backend with the client, so that the suite sees
// ErrClosed either way.
type closeBoth struct {
	*Client
	backend store.Store
}

func (c closeBoth) Close() error { c.Client.Close(); return c.backend.Close() }
