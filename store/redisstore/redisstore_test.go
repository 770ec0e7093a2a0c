package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

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

// TestExpiredKeysLeaveTheIndex: the key index List reads holds the live
// keys only, once the sweeper has run, so memory and List's cost stay
// bounded by live data.
func TestExpiredKeysLeaveTheIndex(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	s, err := redisstore.Open(srv.URL(0), "sweep")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 300 {
		if err := s.Set(ctx, fmt.Sprint("short:", i), []byte("v"), 10*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	s.Set(ctx, "live", []byte("v"), 0)
	s.Set(ctx, "later", []byte("v"), time.Hour)
	s.Incr(ctx, "counter", 1, 0)
	s.Set(ctx, "deleted", []byte("v"), 0)
	s.Delete(ctx, "deleted")
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer rdb.Close()
	idx := strings.TrimSuffix(redisstore.Namespace("sweep"), ":") + "#keys"
	deadline := time.Now().Add(10 * redisstore.SweepEvery)
	for {
		n, err := rdb.ZCard(ctx, idx).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("key index holds %d members; want 3 (live, later, counter) once swept", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	items, err := s.List(ctx, "", "", 10)
	if err != nil || len(items) != 3 {
		t.Fatalf("List = %d items, %v; want 3", len(items), err)
	}
}
