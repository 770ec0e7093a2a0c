package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/broodhq/brood/internal/redistest"
	"github.com/broodhq/brood/store"
	"github.com/broodhq/brood/store/redisstore"
	"github.com/broodhq/brood/store/storetest"
)

func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) store.Store {
		// A namespace per subtest: each starts empty.
		s, err := redisstore.Open(srv.URL(0), fmt.Sprint("conformance-", n.Add(1)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestNamespacesKeepApplicationsApart: two applications on one Redis see
// only their own keys, even when one's name is a prefix of the other's.
func TestNamespacesKeepApplicationsApart(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a, err := redisstore.Open(srv.URL(0), "shop")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := redisstore.Open(srv.URL(0), "shop:admin")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a.Set(ctx, "admin:x", []byte("a's"), 0)
	b.Set(ctx, "x", []byte("b's"), 0)
	if v, _, _ := b.Get(ctx, "x"); string(v) != "b's" {
		t.Fatalf("b read %q; want its own value", v)
	}
	items, err := a.List(ctx, "", "", 10)
	if err != nil || len(items) != 1 || items[0].Key != "admin:x" {
		t.Fatalf("a lists %v, %v; want only its own key", items, err)
	}
}

// TestUnreachableRedisFailsFastAndRecovers: with Redis gone, calls fail
// within about the timeout with store.ErrUnavailable naming the address;
// once Redis is back the same Store works again without being reopened.
func TestUnreachableRedisFailsFastAndRecovers(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	s, err := redisstore.Open(srv.URL(0), "app")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	start := time.Now()
	_, _, err = s.Get(ctx, "k")
	took := time.Since(start)
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), srv.Addr) {
		t.Fatalf("Get with Redis down: %v; want store.ErrUnavailable naming %s", err, srv.Addr)
	}
	if took > 5*redisstore.DefaultTimeout {
		t.Fatalf("Get with Redis down took %s; want about %s at most", took, redisstore.DefaultTimeout)
	}
	if _, err := s.Incr(ctx, "n", 1, 0); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Incr with Redis down: %v; want store.ErrUnavailable", err)
	}
	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := s.Incr(ctx, "n", 1, 0)
		if err == nil && n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Incr 10s after Redis came back: %d, %v; want 1, nil", n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPingFailsFastOnNoRedis(t *testing.T) {
	srv := redistest.Start(t)
	srv.Stop()
	s, err := redisstore.Open(srv.URL(0), "app")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	err = s.Ping(context.Background())
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), srv.Addr) {
		t.Fatalf("Ping with no Redis: %v; want store.ErrUnavailable naming %s", err, srv.Addr)
	}
	if d := time.Since(start); d > 5*redisstore.DefaultTimeout {
		t.Fatalf("Ping took %s", d)
	}
}
