package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/broodhq/brood/internal/fleetlink"
	"github.com/broodhq/brood/schedule"
	_ "github.com/broodhq/brood/store/redisstore" // the store's default backend in a fleet
)

func init() {
	fleetlink.Register(func(ctx context.Context, c fleetlink.Config) (fleetlink.Fleet, error) {
		return open(ctx, c, schedule.SystemClock{})
	})
}

const (
	// Backlog bounds the fleet messages a host holds while Redis is
	// unreachable; Broadcast fails with ErrBacklog beyond it.
	Backlog = 1024
	// StreamMax bounds the fleet's message stream (approximately): a host
	// cut off from Redis for longer than it takes the fleet to send that
	// many messages misses the oldest.
	StreamMax = 10000
	// actReleased is the stream entry a host that hands the lease over
	// adds, so that the others try to take it at once.
	actReleased = "brood.fleet.released"
)

// ErrBacklog is returned by a broadcast when Backlog messages already wait
// for Redis.
var ErrBacklog = errors.New("fleet: too many fleet messages waiting for Redis; is it reachable?")

// Fleet is one host's membership, held by its agent.
type Fleet struct {
	rdb   *redis.Client
	k     keys
	t     Timing
	l     *lease
	log   *slog.Logger
	clock schedule.Clock
	c     fleetlink.Config
	id    string

	out     chan fleetlink.Envelope
	wake    chan struct{}
	closing chan struct{} // closed by Close: the writer sends what waits, then ends
	written chan struct{} // closed when the writer has ended

	cancel      context.CancelFunc
	wg          sync.WaitGroup
	stopLease   context.CancelFunc
	leaseLooped chan struct{} // closed when the lease loop has ended
	once        sync.Once
	handover    sync.Once
	handoverErr error
}

var _ fleetlink.Fleet = (*Fleet)(nil)

func open(ctx context.Context, c fleetlink.Config, clock schedule.Clock) (*Fleet, error) {
	o, t, err := parseURL(c.URL)
	if err != nil {
		return nil, err
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	host, _ := os.Hostname()
	var nonce [4]byte
	rand.Read(nonce[:])
	f := &Fleet{
		rdb: redis.NewClient(o), k: keysFor(c.App), t: t, clock: clock, c: c,
		log: c.Log.With("fleet", o.Addr),
		id:  fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(nonce[:])),
		out: make(chan fleetlink.Envelope, Backlog), wake: make(chan struct{}, 1),
		closing: make(chan struct{}), written: make(chan struct{}),
	}
	f.l = newLease(clock, &redisBackend{rdb: f.rdb, k: f.k}, f.id, t, f.log)
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := f.rdb.Ping(pctx).Err(); err != nil {
		f.log.Warn("fleet: Redis does not answer at startup; serving anyway, fleet jobs wait until it does", "err", err)
	}
	lctx, lcancel := context.WithCancel(context.Background())
	f.cancel = lcancel
	leaseCtx, stopLease := context.WithCancel(lctx)
	f.stopLease, f.leaseLooped = stopLease, make(chan struct{})
	start := f.lastID(ctx)
	f.wg.Add(3)
	go func() { defer f.wg.Done(); defer close(f.leaseLooped); f.leaseLoop(leaseCtx) }()
	go func() { defer f.wg.Done(); f.readLoop(lctx, start) }()
	go func() { defer f.wg.Done(); defer close(f.written); f.writeLoop(lctx) }()
	// One agent per process: a second Register (tests opening several
	// fleets in one process) keeps the first.
	_ = prometheus.Register(collector{f})
	f.log.Info("fleet: joined", "app", c.App, "id", f.id, "lease", t.Lease.String(), "renew", t.Renew.String())
	return f, nil
}

// Run implements fleetlink.Fleet.
func (f *Fleet) Run(ctx context.Context, j fleetlink.Job, job func(context.Context) error) (bool, error) {
	return f.l.run(ctx, f.k.tick, j, job)
}

// Broadcast implements fleetlink.Fleet.
func (f *Fleet) Broadcast(e fleetlink.Envelope) error {
	select {
	case f.out <- e:
		return nil
	default:
		return fmt.Errorf("fleet broadcast %q: %w", e.Action, ErrBacklog)
	}
}

// Close hands the lease over, flushes what waits to be sent (until ctx
// ends), removes this host's status and stops.
func (f *Fleet) Close(ctx context.Context) error {
	err := f.Handover(ctx)
	f.once.Do(func() {
		close(f.closing)
		select {
		case <-f.written:
		case <-ctx.Done():
			f.log.Warn("fleet: fleet messages not sent before the shutdown timeout", "waiting", len(f.out))
		}
		f.rdb.Del(ctx, f.k.host+f.id)
		f.cancel()
		f.rdb.Close() // ends the reader's blocking XREAD, which ignores ctx
		f.wg.Wait()
	})
	return err
}

// Handover gives the lease up for good, once the jobs running under it
// have seen their contexts end (until ctx ends), and tells the other hosts,
// which take it at once. A host begins its graceful stop with it, before
// its workers drain; Close calls it too.
func (f *Fleet) Handover(ctx context.Context) error {
	f.handover.Do(func() {
		// The loop first, so that no renewal in flight takes the lease
		// again after the release.
		f.stopLease()
		<-f.leaseLooped
		leader, _, _ := f.l.state()
		f.handoverErr = f.l.release(ctx)
		if leader && f.handoverErr == nil {
			f.Broadcast(fleetlink.Envelope{Action: actReleased})
		}
	})
	return f.handoverErr
}

// leaseLoop takes or renews the lease every Renew, at once when woken,
// and publishes the host's status with it.
func (f *Fleet) leaseLoop(ctx context.Context) {
	tick := make(chan struct{}, 1)
	for {
		f.l.attempt(ctx)
		f.publishStatus(ctx)
		t := f.clock.AfterFunc(f.t.Renew, func() {
			select {
			case tick <- struct{}{}:
			default:
			}
		})
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-tick:
		case <-f.wake:
			t.Stop()
		}
	}
}

func (f *Fleet) publishStatus(ctx context.Context) {
	if f.c.Status == nil {
		return
	}
	st := f.c.Status()
	st.ID = f.id
	st.Leader, st.Epoch, _ = f.l.state()
	if !st.Started.IsZero() {
		st.Uptime = f.clock.Now().Sub(st.Started).Round(time.Second).String()
	}
	b, _ := json.Marshal(st)
	sctx, cancel := context.WithTimeout(ctx, f.t.Renew)
	defer cancel()
	f.rdb.Set(sctx, f.k.host+f.id, b, 3*f.t.Renew)
}

// lastID is where this host starts reading the stream: after what is there
// now, or from now by the clock if Redis does not answer.
func (f *Fleet) lastID(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if msgs, err := f.rdb.XRevRangeN(ctx, f.k.stream, "+", "-", 1).Result(); err == nil {
		if len(msgs) == 0 {
			return "0-0"
		}
		return msgs[0].ID
	}
	return fmt.Sprintf("%d-0", f.clock.Now().UnixMilli())
}

// readLoop delivers the stream's messages on this host, from the last id
// it saw, so that a host cut off from Redis gets what was sent meanwhile.
func (f *Fleet) readLoop(ctx context.Context, last string) {
	backoff := retry{}
	for ctx.Err() == nil {
		res, err := f.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{f.k.stream, last}, Count: 100, Block: 5 * time.Second}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				f.l.noteDown(err)
				backoff.wait(ctx)
			}
			continue
		}
		backoff.reset()
		for _, s := range res {
			for _, m := range s.Messages {
				last = m.ID
				f.deliver(m.Values)
			}
		}
	}
}

func (f *Fleet) deliver(v map[string]any) {
	a, _ := v["a"].(string)
	if a == actReleased {
		select {
		case f.wake <- struct{}{}:
		default:
		}
		return
	}
	if a == "" || f.c.Deliver == nil {
		return
	}
	d, _ := v["d"].(string)
	f.c.Deliver(fleetlink.Envelope{Action: a, Data: json.RawMessage(d)})
}

// writeLoop adds queued messages to the stream in order, retrying each
// until Redis takes it; once closing, it sends what waits and ends.
func (f *Fleet) writeLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-f.out:
			f.send(ctx, e)
		case <-f.closing:
			f.flush(ctx)
			return
		}
	}
}

func (f *Fleet) send(ctx context.Context, e fleetlink.Envelope) {
	backoff := retry{}
	for ctx.Err() == nil {
		err := f.rdb.XAdd(ctx, &redis.XAddArgs{
			Stream: f.k.stream, MaxLen: StreamMax, Approx: true,
			Values: []any{"a", e.Action, "d", string(e.Data), "h", f.id},
		}).Err()
		if err == nil {
			return
		}
		f.l.noteDown(err)
		backoff.wait(ctx)
	}
}

// flush sends what waits, until ctx ends.
func (f *Fleet) flush(ctx context.Context) {
	for {
		select {
		case e := <-f.out:
			f.send(ctx, e)
		default:
			return
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// retry waits longer after each failure, up to 2 s.
type retry struct{ d time.Duration }

func (r *retry) reset() { r.d = 0 }

func (r *retry) wait(ctx context.Context) {
	r.d = min(max(2*r.d, 100*time.Millisecond), 2*time.Second)
	t := time.NewTimer(r.d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
