package storeagent

import (
	"context"
	"testing"

	"github.com/broodhq/brood/store"
	"github.com/broodhq/brood/store/memstore"
)

// lateGroup is a grouper whose Group returns as soon as its ctx has ended
// and runs fn afterwards, as boltstore does with a write its caller gave
// up on.
type lateGroup struct {
	store.Store
	ran chan struct{}
}

func (g lateGroup) Group(ctx context.Context, fn func(w store.Store)) error {
	go func() {
		defer close(g.ran)
		fn(g.Store)
	}()
	<-ctx.Done()
	return ctx.Err()
}

// TestGroupRunAfterItsCallerGaveUpTouchesNoReply: a group whose commit
// the batch stopped waiting for may still run, later; what it writes must
// not reach the replies being encoded (under -race, a data race if it
// does), and those replies say the writes failed.
func TestGroupRunAfterItsCallerGaveUpTouchesNoReply(t *testing.T) {
	backend := memstore.New()
	defer backend.Close()
	g := lateGroup{Store: backend, ran: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	set := request{op: opSet, key: "k", value: []byte("v")}
	incr := request{op: opIncr, key: "n", delta: 1}
	raw, err := handleBatch(ctx, g, encodeBatch([][]byte{set.encode(), incr.encode()}))
	<-g.ran
	if err != nil {
		t.Fatal(err)
	}
	replies, err := decodeBatch(raw)
	if err != nil || len(replies) != 2 {
		t.Fatalf("replies %d, %v", len(replies), err)
	}
	for i, b := range replies {
		r, err := decodeResponse(b, "")
		if err != nil {
			t.Fatal(err)
		}
		if r.err == nil || r.err.Error() != context.Canceled.Error() {
			t.Errorf("reply %d: %v; want the group's error, %v", i, r.err, context.Canceled)
		}
	}
}
