package fleet

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/broodhq/brood/internal/fleetlink"
	"github.com/broodhq/brood/internal/redistest"
	"github.com/broodhq/brood/schedule"
)

type host struct {
	f   *Fleet
	mu  sync.Mutex
	got []string
}

func (h *host) received() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.got...)
}

func join(t *testing.T, url, app string) *host {
	t.Helper()
	h := &host{}
	f, err := open(context.Background(), fleetlink.Config{URL: url, App: app, Log: quiet,
		Deliver: func(e fleetlink.Envelope) {
			var s string
			json.Unmarshal(e.Data, &s)
			h.mu.Lock()
			h.got = append(h.got, e.Action+":"+s)
			h.mu.Unlock()
		},
		Status: func() fleetlink.Status { return fleetlink.Status{Host: "h", Started: time.Now()} },
	}, schedule.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	h.f = f
	t.Cleanup(func() { f.Close(context.Background()) })
	return h
}

func leaders(hs ...*host) (n int, who *host, epoch int64) {
	for _, h := range hs {
		if ok, e, _ := h.f.l.state(); ok {
			n, who, epoch = n+1, h, e
		}
	}
	return
}

func waitLeader(t *testing.T, within time.Duration, hs ...*host) (*host, int64, time.Duration) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if n, who, e := leaders(hs...); n == 1 {
			return who, e, time.Since(start)
		} else if n > 1 {
			t.Fatalf("%d hosts lead at once", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no leader within %v", within)
	return nil, 0, 0
}

// Against a real redis-server: one leader per application, a graceful
// stop hands over at once with a higher epoch, broadcasts reach every host
// in order, and a second application on the same Redis is apart.
func TestFleetOverRedis(t *testing.T) {
	srv := redistest.Start(t)
	url := srv.URL(0) + "?lease=2s&renew=300ms"
	a, b, c := join(t, url, "app"), join(t, url, "app"), join(t, url, "app")
	other := join(t, url, "other")

	lead, e1, _ := waitLeader(t, 5*time.Second, a, b, c)
	if _, eo, _ := waitLeader(t, 5*time.Second, other); eo != 1 {
		t.Errorf("the other application's epoch: got %d, want 1 (its own counter)", eo)
	}

	for i, s := range []string{"1", "2", "3"} {
		raw, _ := json.Marshal(s)
		if err := []*host{a, b, c}[i].f.Broadcast(fleetlink.Envelope{Action: "m", Data: raw}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, h := range []*host{a, b, c} {
		for len(h.received()) < 3 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if got := h.received(); len(got) != 3 {
			t.Errorf("a host received %v, want m:1 m:2 m:3", got)
		}
	}
	if got := other.received(); len(got) != 0 {
		t.Errorf("the other application received %v, want nothing", got)
	}

	rest := []*host{}
	for _, h := range []*host{a, b, c} {
		if h != lead {
			rest = append(rest, h)
		}
	}
	stopAt := time.Now()
	lead.f.Close(context.Background())
	_, e2, _ := waitLeader(t, 5*time.Second, rest...)
	took := time.Since(stopAt)
	if took > time.Second {
		t.Errorf("handover after a graceful stop took %v, want at most 1s", took)
	}
	if e2 <= e1 {
		t.Errorf("epoch after handover: got %d, want more than %d", e2, e1)
	}
	t.Logf("graceful handover in %v (epoch %d -> %d)", took, e1, e2)
}

// The same tick is claimed once across hosts even when both lead.
func TestTickClaimOverRedis(t *testing.T) {
	srv := redistest.Start(t)
	a := join(t, srv.URL(0), "app")
	b := &redisBackend{rdb: a.f.rdb, k: a.f.k}
	ok1, err1 := b.claim(context.Background(), a.f.k.tick+"j:e1", "x 1", time.Minute)
	ok2, err2 := b.claim(context.Background(), a.f.k.tick+"j:e1", "y 2", time.Minute)
	if err1 != nil || err2 != nil || !ok1 || ok2 {
		t.Errorf("two claims of one tick: got (%v %v) (%v %v), want the first only", ok1, err1, ok2, err2)
	}
}
