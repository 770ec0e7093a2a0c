package storeagent_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/broodhq/brood/agent"
	"github.com/broodhq/brood/app"
	"github.com/broodhq/brood/store"
	"github.com/broodhq/brood/store/memstore"
)

// TestOutsideAClusterTheStoreSaysSo: an App or Agent made outside
// framework.Run has a store whose calls fail with store.ErrUnavailable
// saying why, unless a test gives it one.
func TestOutsideAClusterTheStoreSaysSo(t *testing.T) {
	ctx := context.Background()
	_, _, err := app.New(app.Config{}).Store().Get(ctx, "k")
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "not running in a brood cluster") {
		t.Errorf("app.New(...).Store().Get: %v; want store.ErrUnavailable saying there is no cluster", err)
	}
	if err := agent.New(agent.Config{}).Store().Set(ctx, "k", nil, 0); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("agent.New(...).Store().Set: %v; want store.ErrUnavailable", err)
	}
	ms := memstore.New()
	defer ms.Close()
	a := app.New(app.Config{Store: ms})
	if err := a.Store().Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if v, ok, _ := ms.Get(ctx, "k"); !ok || string(v) != "v" {
		t.Fatalf("app.Config.Store not used: %q, %v", v, ok)
	}
}
