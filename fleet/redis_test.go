package fleet

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

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
	for _, h := range rest {
		want := 0.0
		if ok, _, _ := h.f.l.state(); ok {
			want = 1
		}
		if got := gauge(t, h.f, "brood_fleet_lease_held"); got != want {
			t.Errorf("brood_fleet_lease_held: got %v, want %v", got, want)
		}
		if got := gauge(t, h.f, "brood_fleet_redis_up"); got != 1 {
			t.Errorf("brood_fleet_redis_up: got %v, want 1", got)
		}
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

// commandCalls sums the calls of every command in INFO commandstats.
func commandCalls(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, line := range strings.Split(info, "\n") {
		_, rest, ok := strings.Cut(line, ":calls=")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
		total += n
	}
	return total
}

// At rest (no job ticking, no messages), the fleet machinery of three
// hosts at the default timing costs a handful of Redis commands per
// second: per host, a lease script and a status SET every Renew and a
// blocking XREAD every 5 s.
func TestRedisCommandsAtRest(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 12 s")
	}
	srv := redistest.Start(t)
	for range 3 {
		join(t, srv.URL(0), "app")
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	time.Sleep(2 * time.Second)
	const window = 10 * time.Second
	before := commandCalls(t, rdb)
	time.Sleep(window)
	after := commandCalls(t, rdb)
	perSec := float64(after-before-1) / window.Seconds() // minus our INFO
	t.Logf("Redis commands at rest, 3 hosts, lease %v, renew %v: %.1f/s", DefaultLease, DefaultRenew, perSec)
	if perSec > 10 {
		t.Errorf("commands at rest: %.1f/s, want a handful (under 10/s for 3 hosts)", perSec)
	}
}

// gauge reads one of f's metrics.
func gauge(t *testing.T, f *Fleet, name string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(collector{f})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// A Redis unreachable at startup does not stop the host from joining: it
// keeps trying, and leads once Redis answers.
func TestRedisUnreachableAtStartup(t *testing.T) {
	srv := redistest.Start(t)
	srv.Stop()
	h := join(t, srv.URL(0)+"?lease=2s&renew=200ms", "app")
	time.Sleep(500 * time.Millisecond)
	if ok, _, down := h.f.l.state(); ok || !down {
		t.Fatalf("with Redis down: leader %v, down %v; want false, true", ok, down)
	}
	srv.Restart()
	waitLeader(t, 10*time.Second, h)
	if got := gauge(t, h.f, "brood_fleet_redis_up"); got != 1 {
		t.Errorf("brood_fleet_redis_up after Redis came: got %v, want 1", got)
	}
}
