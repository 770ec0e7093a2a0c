package fleet

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/broodhq/brood/internal/fleetlink"
	"github.com/broodhq/brood/schedule"
)

var t0 = time.Date(2026, 1, 5, 10, 7, 0, 0, time.UTC)

// fakeRedis is the backend in memory, on the fake clock.
type fakeRedis struct {
	clk *schedule.FakeClock

	mu      sync.Mutex
	holder  string
	epoch   int64 // the counter
	expires time.Time
	claims  map[string]bool
	down    bool
}

var errDown = errors.New("redis down")

func (r *fakeRedis) acquire(_ context.Context, holder string, ttl time.Duration, floor int64) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		return 0, errDown
	}
	now := r.clk.Now()
	if r.holder != "" && now.Before(r.expires) {
		if r.holder != holder {
			return -r.epoch, nil
		}
		r.expires = now.Add(ttl)
		return r.epoch, nil
	}
	r.epoch = max(r.epoch, floor) + 1
	r.holder, r.expires = holder, now.Add(ttl)
	return r.epoch, nil
}

func (r *fakeRedis) release(_ context.Context, holder string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		return errDown
	}
	if r.holder == holder {
		r.holder = ""
	}
	return nil
}

func (r *fakeRedis) claim(_ context.Context, key, _ string, _ time.Duration) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		return false, errDown
	}
	if r.claims[key] {
		return false, nil
	}
	r.claims[key] = true
	return true, nil
}

func (r *fakeRedis) setDown(d bool) { r.mu.Lock(); r.down = d; r.mu.Unlock() }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newPair(t *testing.T) (*schedule.FakeClock, *fakeRedis, *lease, *lease) {
	clk := schedule.NewFakeClock(t0)
	r := &fakeRedis{clk: clk, claims: map[string]bool{}}
	tm := Timing{Lease: 10 * time.Second, Renew: 2 * time.Second}
	return clk, r, newLease(clk, r, "a", tm, quiet), newLease(clk, r, "b", tm, quiet)
}

// leaderCtx runs a job on l that parks until its context ends, and returns
// that context once the job has started.
func leaderCtx(t *testing.T, l *lease, name string) (context.Context, chan struct{}) {
	t.Helper()
	started := make(chan context.Context, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ran, err := l.run(context.Background(), "t:", fleetlink.Job{Name: name}, func(ctx context.Context) error {
			started <- ctx
			<-ctx.Done()
			return nil
		})
		if !ran || err != nil {
			t.Errorf("run on the leader: ran %v, err %v; want ran, nil", ran, err)
			close(started)
		}
	}()
	ctx := <-started
	if ctx == nil {
		t.FailNow()
	}
	return ctx, done
}

// A holder that stops renewing (it died, or was paused) has its jobs'
// contexts ended before the lease can lapse in Redis; another host takes
// over within Lease+Renew, with a higher epoch.
func TestHolderThatStopsRenewingStopsBeforeTheNextStarts(t *testing.T) {
	clk, _, a, b := newPair(t)
	ctx := context.Background()
	a.attempt(ctx)
	b.attempt(ctx)
	if e, _, ok := a.current(); !ok || e != 1 {
		t.Fatalf("a after first attempt: epoch %d, leader %v; want 1, true", e, ok)
	}
	if _, _, ok := b.current(); ok {
		t.Fatal("b leads too")
	}
	jobCtx, done := leaderCtx(t, a, "j")
	if got := fleetlink.Epoch(jobCtx); got != 1 {
		t.Errorf("epoch in the job's context: got %d, want 1", got)
	}
	var cancelledAt time.Time

	// a renews twice, then stops; b keeps trying every Renew.
	lastRenew := t0
	for i := 0; i < 2; i++ {
		clk.Advance(2 * time.Second)
		lastRenew = clk.Now()
		a.attempt(ctx)
		b.attempt(ctx)
	}
	var takenAt time.Time
	for i := 1; i <= 40 && takenAt.IsZero(); i++ {
		clk.Advance(500 * time.Millisecond)
		if cancelledAt.IsZero() && jobCtx.Err() != nil {
			cancelledAt = clk.Now()
		}
		if i%4 != 0 {
			continue
		}
		b.attempt(ctx)
		if _, _, ok := b.current(); ok {
			takenAt = clk.Now()
		}
	}
	<-done
	if takenAt.IsZero() {
		t.Fatal("b never took the lease")
	}
	if bound := lastRenew.Add(10*time.Second + 2*time.Second); takenAt.After(bound) {
		t.Errorf("b took over at %v, want by %v (Lease+Renew after a's last renewal)", takenAt.Sub(t0), bound.Sub(t0))
	}
	if cancelledAt.IsZero() || !cancelledAt.Before(takenAt) {
		t.Errorf("a's job context ended at %v, b took over at %v: want a's end first", cancelledAt.Sub(t0), takenAt.Sub(t0))
	}
	if !errors.Is(context.Cause(jobCtx), ErrLeaseLapsed) {
		t.Errorf("cause: got %v, want ErrLeaseLapsed", context.Cause(jobCtx))
	}
	if e, _, _ := b.current(); e != 2 {
		t.Errorf("b's epoch: got %d, want 2", e)
	}
	// a wakes up: it must not act, and learns it lost.
	if ran, _ := a.run(ctx, "t:", fleetlink.Job{Name: "j"}, func(context.Context) error { return nil }); ran {
		t.Error("a ran a job after its lease lapsed")
	}
	a.attempt(ctx)
	if _, _, ok := a.current(); ok {
		t.Error("a leads again while b holds the lease")
	}
}

// With Redis unreachable the holder keeps acting only until its lease could
// lapse, says so once, and takes the lease again when Redis is back.
func TestRedisDownPausesJobsAndResumes(t *testing.T) {
	clk := schedule.NewFakeClock(t0)
	r := &fakeRedis{clk: clk, claims: map[string]bool{}}
	var log strings.Builder
	var logMu sync.Mutex
	l := newLease(clk, r, "a", Timing{Lease: 10 * time.Second, Renew: 2 * time.Second},
		slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) { logMu.Lock(); defer logMu.Unlock(); return log.Write(p) }), nil)))
	ctx := context.Background()
	l.attempt(ctx)
	jobCtx, done := leaderCtx(t, l, "j")
	r.setDown(true)
	for i := 0; i < 8; i++ {
		clk.Advance(2 * time.Second)
		l.attempt(ctx)
		if i == 3 && jobCtx.Err() != nil {
			t.Fatalf("job context ended at %v, before the lease could lapse", clk.Now().Sub(t0))
		}
	}
	<-done
	if !errors.Is(context.Cause(jobCtx), ErrLeaseLapsed) {
		t.Errorf("cause: got %v, want ErrLeaseLapsed", context.Cause(jobCtx))
	}
	logMu.Lock()
	if n := strings.Count(log.String(), "Redis unreachable"); n != 1 {
		t.Errorf("said Redis unreachable %d times, want once:\n%s", n, log.String())
	}
	logMu.Unlock()
	r.setDown(false)
	clk.Advance(2 * time.Second)
	l.attempt(ctx)
	if _, _, ok := l.current(); !ok {
		t.Error("not leading again after Redis came back")
	}
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(p []byte) (int, error) { return w(p) }

// Even two hosts that both believe they lead cannot run one tick twice.
func TestTickClaimedOnceEvenWithTwoLeaders(t *testing.T) {
	clk, r, a, b := newPair(t)
	a.result(clk.Now(), 1, nil)
	b.result(clk.Now(), 2, nil)
	runs := 0
	for _, l := range []*lease{a, b} {
		ran, err := l.run(context.Background(), "t:", fleetlink.Job{Name: "j", Every: time.Minute}, func(context.Context) error { runs++; return nil })
		if err != nil {
			t.Fatal(err)
		}
		_ = ran
	}
	if runs != 1 {
		t.Errorf("runs of one tick: got %d, want 1 (claims %v)", runs, r.claims)
	}
}

// A graceful stop hands the lease over: the next attempt of another host
// takes it, without waiting for it to lapse.
func TestReleaseHandsOverAtOnce(t *testing.T) {
	_, _, a, b := newPair(t)
	ctx := context.Background()
	a.attempt(ctx)
	jobCtx, done := leaderCtx(t, a, "j")
	if err := a.release(ctx); err != nil {
		t.Fatal(err)
	}
	<-done
	if !errors.Is(context.Cause(jobCtx), ErrHandedOver) {
		t.Errorf("cause: got %v, want ErrHandedOver", context.Cause(jobCtx))
	}
	b.attempt(ctx)
	if e, _, ok := b.current(); !ok || e != 2 {
		t.Errorf("b after a released: epoch %d, leader %v; want 2, true", e, ok)
	}
}

// Hosts whose schedulers started at different times name an interval's
// ticks alike; consecutive ticks of one host get different names.
func TestTickNamesAgreeAcrossHosts(t *testing.T) {
	j := fleetlink.Job{Name: "j", Every: 200 * time.Millisecond}
	base := time.UnixMilli(1_000_000_000_000)
	for _, jitter := range []time.Duration{-90 * time.Millisecond, -3 * time.Millisecond, 0, 7 * time.Millisecond, 90 * time.Millisecond} {
		got, _ := tickOf(j, base.Add(jitter), Timing{}.withDefaults())
		want, _ := tickOf(j, base, Timing{}.withDefaults())
		if got != want {
			t.Errorf("tick at %v off the grid: got %s, want %s", jitter, got, want)
		}
	}
	prev := ""
	for i := 0; i < 20; i++ {
		due := base.Add(37*time.Millisecond + time.Duration(i)*200*time.Millisecond)
		got, _ := tickOf(j, due, Timing{}.withDefaults())
		if got == prev {
			t.Errorf("ticks %d and %d of one host share the name %s", i-1, i, got)
		}
		prev = got
	}
}

// A Redis that lost its data (restarted empty) does not make epochs go
// back: a host that saw epoch n takes the lease with more than n.
func TestEpochsGrowAcrossARedisThatLostItsData(t *testing.T) {
	clk, r, a, b := newPair(t)
	ctx := context.Background()
	a.attempt(ctx) // epoch 1
	b.attempt(ctx) // sees 1
	a.release(ctx)
	b.attempt(ctx) // epoch 2
	r.mu.Lock()
	r.epoch, r.holder = 0, "" // restarted empty
	r.mu.Unlock()
	clk.Advance(2 * time.Second)
	b.attempt(ctx)
	if e, _, ok := b.current(); !ok || e != 3 {
		t.Errorf("after Redis lost its data: epoch %d, leader %v; want 3, true", e, ok)
	}
}
