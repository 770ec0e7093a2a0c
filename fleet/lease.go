package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/broodhq/brood/internal/fleetlink"
	"github.com/broodhq/brood/schedule"
)

// Defaults of the lease's timing; the URL's lease= and renew= parameters
// change them (see the package documentation).
const (
	DefaultLease = 10 * time.Second
	DefaultRenew = 2 * time.Second
)

var (
	// ErrLeaseLost ends a job's context when another host holds the lease.
	ErrLeaseLost = errors.New("fleet: another host holds the lease")
	// ErrLeaseLapsed ends a job's context when the lease could not be
	// renewed in time (Redis unreachable, the process paused): the job
	// stops before any other host may start.
	ErrLeaseLapsed = errors.New("fleet: the lease could not be renewed in time")
	// ErrHandedOver ends a job's context when this host stops and hands
	// the lease over.
	ErrHandedOver = errors.New("fleet: lease handed over: this host is stopping")
)

// Timing is a lease's timing. A holder renews every Renew and trusts its
// lease until Lease-Margin after it sent the last renewal that succeeded;
// Redis keeps it Lease after it received it, so the holder stops acting
// before anyone else can take over. The others try to take it every Renew,
// so a holder that dies is replaced within Lease+Renew.
type Timing struct {
	Lease, Renew, Margin time.Duration
}

func (t Timing) withDefaults() Timing {
	if t.Lease <= 0 {
		t.Lease = DefaultLease
	}
	if t.Renew <= 0 {
		t.Renew = min(DefaultRenew, t.Lease/5)
	}
	if t.Margin <= 0 {
		t.Margin = t.Lease / 10
	}
	return t
}

// backend is what the lease needs of Redis; the in-process tests fake it.
type backend interface {
	// acquire takes the lease for holder, or extends it if holder has it,
	// for ttl; it returns the lease's epoch, or minus the epoch of the
	// other host that holds it. A new epoch is above floor, the highest
	// this host has seen, so that epochs keep growing even if Redis lost
	// its data (restarted empty, failed over to a replica behind).
	acquire(ctx context.Context, holder string, ttl time.Duration, floor int64) (int64, error)
	// release gives the lease up if holder has it.
	release(ctx context.Context, holder string) error
	// claim records that key's tick runs, unless it already does.
	claim(ctx context.Context, key, holder string, ttl time.Duration) (bool, error)
}

// lease is one host's view of the fleet's lease. One leader per fleet runs
// every OncePerFleet job: one renewal per Renew at rest, however many jobs.
type lease struct {
	clock  schedule.Clock
	b      backend
	holder string
	t      Timing
	log    *slog.Logger

	mu         sync.Mutex
	epoch      int64 // 0: not held
	validUntil time.Time
	term       context.Context // ends when the current term does
	endTerm    context.CancelCauseFunc
	watchdog   schedule.Timer
	down       bool  // Redis unreachable, said once
	seen       int64 // the highest epoch seen
	closed     bool  // released for good: this host is stopping
	inflight   sync.WaitGroup
}

func newLease(clock schedule.Clock, b backend, holder string, t Timing, log *slog.Logger) *lease {
	return &lease{clock: clock, b: b, holder: holder, t: t.withDefaults(), log: log}
}

// attempt takes or renews the lease once.
func (l *lease) attempt(ctx context.Context) {
	sent := l.clock.Now()
	actx, cancel := context.WithTimeout(ctx, l.t.Renew)
	defer cancel()
	l.mu.Lock()
	floor := l.seen
	l.mu.Unlock()
	epoch, err := l.b.acquire(actx, l.holder, l.t.Lease, floor)
	if ctx.Err() != nil {
		return
	}
	l.result(sent, epoch, err)
}

// result applies the answer to an acquire sent at sent.
func (l *lease) result(sent time.Time, epoch int64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	if err != nil {
		l.noteDownLocked(err)
		return // the term, if any, lasts until its watchdog
	}
	l.noteUpLocked()
	if epoch < 0 { // held by another
		l.seen = max(l.seen, -epoch)
		epoch = 0
	}
	l.seen = max(l.seen, epoch)
	switch {
	case epoch == 0:
		if l.epoch != 0 {
			l.endLocked(ErrLeaseLost)
		}
		return
	case epoch != l.epoch:
		if l.epoch != 0 {
			l.endLocked(ErrLeaseLost)
		}
		l.epoch = epoch
		l.term, l.endTerm = context.WithCancelCause(context.Background())
		l.log.Info("fleet: this host holds the lease; it runs the fleet's jobs", "epoch", epoch)
	}
	l.validUntil = sent.Add(l.t.Lease - l.t.Margin)
	now := l.clock.Now()
	if !now.Before(l.validUntil) {
		l.endLocked(ErrLeaseLapsed)
		return
	}
	if l.watchdog != nil {
		l.watchdog.Stop()
	}
	l.watchdog = l.clock.AfterFunc(l.validUntil.Sub(now), func() { l.lapse(epoch) })
}

// lapse ends the term of epoch if it was not renewed in time.
func (l *lease) lapse(epoch int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.epoch != epoch || l.clock.Now().Before(l.validUntil) {
		return
	}
	l.log.Warn("fleet: lease not renewed in time; fleet jobs stopped on this host", "epoch", epoch)
	l.endLocked(ErrLeaseLapsed)
}

func (l *lease) endLocked(cause error) {
	if l.epoch == 0 {
		return
	}
	if cause != ErrLeaseLapsed {
		l.log.Info("fleet: this host no longer holds the lease", "epoch", l.epoch, "why", cause)
	}
	l.endTerm(cause)
	if l.watchdog != nil {
		l.watchdog.Stop()
		l.watchdog = nil
	}
	l.epoch, l.term, l.endTerm, l.validUntil = 0, nil, nil, time.Time{}
}

func (l *lease) noteDownLocked(err error) {
	if !l.down {
		l.down = true
		l.log.Warn("fleet: Redis unreachable; fleet jobs pause once the lease lapses and fleet messages wait; retrying", "err", err)
	}
}

func (l *lease) noteUpLocked() {
	if l.down {
		l.down = false
		l.log.Info("fleet: Redis reachable again")
	}
}

func (l *lease) noteDown(err error) { l.mu.Lock(); l.noteDownLocked(err); l.mu.Unlock() }

// current returns the term this host may act in now, if any.
func (l *lease) current() (int64, context.Context, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.epoch == 0 || !l.clock.Now().Before(l.validUntil) {
		return 0, nil, false
	}
	return l.epoch, l.term, true
}

// state is what the status shows.
func (l *lease) state() (leader bool, epoch int64, down bool) {
	e, _, ok := l.current()
	l.mu.Lock()
	defer l.mu.Unlock()
	return ok, e, l.down
}

// release ends the term for good, waits (until ctx ends) for the jobs
// running under it, and gives the lease up, for a graceful stop: the
// others take it as soon as they hear.
func (l *lease) release(ctx context.Context) error {
	l.mu.Lock()
	l.closed = true
	l.endLocked(ErrHandedOver)
	l.mu.Unlock()
	done := make(chan struct{})
	go func() { l.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("fleet jobs still running: %w", context.Cause(ctx))
	}
	return l.b.release(ctx, l.holder)
}

// enter is current for a run: it counts the run in flight, for release.
func (l *lease) enter() (int64, context.Context, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.epoch == 0 || !l.clock.Now().Before(l.validUntil) {
		return 0, nil, false
	}
	l.inflight.Add(1)
	return l.epoch, l.term, true
}

// run runs job if this host holds the lease and claims the tick first.
func (l *lease) run(ctx context.Context, keyPrefix string, j fleetlink.Job, job func(context.Context) error) (bool, error) {
	epoch, term, ok := l.enter()
	if !ok {
		return false, nil
	}
	defer l.inflight.Done()
	now := l.clock.Now()
	due, ok := schedule.DueFromContext(ctx)
	if !ok {
		due = now
	}
	tick, ttl := tickOf(j, due, l.t)
	if now.Sub(due) > ttl/2 {
		l.log.Warn("fleet: tick too late to claim safely; skipped", "job", j.Name, "due", due)
		return false, nil
	}
	claimed, err := l.b.claim(ctx, keyPrefix+j.Name+":"+tick, l.holder+" "+strconv.FormatInt(epoch, 10), ttl)
	if err != nil {
		l.noteDown(err)
		return false, nil
	}
	if !claimed || term.Err() != nil {
		return false, nil
	}
	// The job's context is the term's child, so that ending the term ends
	// it synchronously, before the lease can lapse; it keeps ctx's values
	// and ends with ctx too.
	jctx, cancel := context.WithCancelCause(termValues{term, ctx})
	defer cancel(nil)
	stop := context.AfterFunc(ctx, func() { cancel(context.Cause(ctx)) })
	defer stop()
	return true, job(fleetlink.WithEpoch(jctx, epoch))
}

// termValues is a term's context with the values of another: the term's
// own first, so that the context package sees the term as the parent to
// cancel with.
type termValues struct {
	context.Context // the term
	values          context.Context
}

func (c termValues) Value(k any) any {
	if v := c.Context.Value(k); v != nil {
		return v
	}
	return c.values.Value(k)
}

// tickOf names a tick so that every host names it alike, and says how long
// its claim must last: beyond any time a host could still run it.
func tickOf(j fleetlink.Job, due time.Time, t Timing) (string, time.Duration) {
	if j.Every > 0 {
		// Hosts' schedulers start at different times: round the due time to
		// the fleet-wide grid of the interval.
		ms := j.Every.Milliseconds()
		if ms < 1 {
			ms = 1
		}
		n := (due.UnixMilli() + ms/2) / ms
		return "e" + strconv.FormatInt(n, 10), 2*t.Lease + 10*j.Every
	}
	return "c" + strconv.FormatInt(due.Unix(), 10), 2*t.Lease + time.Hour
}
