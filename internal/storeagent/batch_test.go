package storeagent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// echoCalls answers each request of a batch with itself, after a delay,
// counting calls and the largest batch.
type echoCalls struct {
	delay   time.Duration
	calls   atomic.Int64
	largest atomic.Int64
}

func (e *echoCalls) call(ctx context.Context, batch []byte) ([]byte, error) {
	e.calls.Add(1)
	reqs, err := decodeBatch(batch)
	if err != nil {
		return nil, err
	}
	if n := int64(len(reqs)); n > e.largest.Load() {
		e.largest.Store(n)
	}
	select {
	case <-time.After(e.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return encodeBatch(reqs), nil
}

func TestBatcherSharesCallsAndAnswersEach(t *testing.T) {
	e := &echoCalls{delay: 5 * time.Millisecond}
	b := &batcher{call: e.call}
	const n = 400
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			want := []byte(fmt.Sprint("req-", i))
			got, err := b.submit(context.Background(), want)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("submit(%s) = %q, %v", want, got, err)
			}
		})
	}
	wg.Wait()
	if c := e.calls.Load(); c >= n/4 {
		t.Fatalf("%d calls for %d concurrent operations; want them batched", c, n)
	}
	if e.largest.Load() > maxBatch {
		t.Fatalf("a batch of %d; limit %d", e.largest.Load(), maxBatch)
	}
	t.Logf("%d operations in %d calls, largest batch %d", n, e.calls.Load(), e.largest.Load())
}

// TestBatcherCallerGivingUpHoldsNoOneBack: callers whose context ends
// while they wait leave; the others are still answered.
func TestBatcherCallerGivingUpHoldsNoOneBack(t *testing.T) {
	e := &echoCalls{delay: 50 * time.Millisecond}
	b := &batcher{call: e.call}
	var wg sync.WaitGroup
	var ok, gaveUp atomic.Int64
	for i := range 60 {
		wg.Go(func() {
			ctx := context.Background()
			if i%2 == 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 10*time.Millisecond)
				defer cancel()
			}
			_, err := b.submit(ctx, []byte("x"))
			switch {
			case err == nil:
				ok.Add(1)
			case i%2 == 0 && errors.Is(err, context.DeadlineExceeded):
				gaveUp.Add(1) // its deadline, or its batch's: the same instant
			default:
				t.Errorf("submit: %v", err)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("submits still waiting after 10s")
	}
	if ok.Load() < 30 {
		t.Fatalf("%d answered, %d gave up; want the 30 without a deadline answered", ok.Load(), gaveUp.Load())
	}
	// A batch whose sender gave up is finished in the background.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b.mu.Lock()
		inflight, pending := b.calls(), len(b.pending)
		b.mu.Unlock()
		if inflight == 0 && pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after everything ended: %d in flight, %d pending; want 0, 0", inflight, pending)
		}
	}
}

// calls is how many calls b has on their way.
func (b *batcher) calls() int {
	n := 0
	for _, t := range b.out {
		if !t.IsZero() {
			n++
		}
	}
	return n
}

// While calls return sooner than slowCall, one is out at a time: the
// operations that come meanwhile wait and go together in the next.
func TestBatcherKeepsOneQuickCallOut(t *testing.T) {
	var out, peak atomic.Int64
	call := func(ctx context.Context, batch []byte) ([]byte, error) {
		n := out.Add(1)
		defer out.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(2 * time.Millisecond)
		reqs, err := decodeBatch(batch)
		return encodeBatch(reqs), err
	}
	b := &batcher{call: call, slow: time.Minute}
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			if _, err := b.submit(context.Background(), []byte(fmt.Sprint(i))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p != 1 {
		t.Fatalf("%d calls out at once while each took 2ms; want 1 (slowCall is a minute)", p)
	}
}

// A call out for longer than slowCall no longer holds the next batch: it
// goes out in the second slot, after slowCall and not before.
func TestBatcherSendsPastASlowCall(t *testing.T) {
	release := make(chan struct{})
	call := func(ctx context.Context, batch []byte) ([]byte, error) {
		reqs, err := decodeBatch(batch)
		if err == nil && string(reqs[0]) == "slow" {
			<-release
		}
		return encodeBatch(reqs), err
	}
	const slow = 50 * time.Millisecond
	b := &batcher{call: call, slow: slow}
	slowDone := make(chan error, 1)
	go func() {
		_, err := b.submit(context.Background(), []byte("slow"))
		slowDone <- err
	}()
	for b.locked(b.calls) == 0 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := b.submit(ctx, []byte("quick"))
	if err != nil || string(got) != "quick" {
		t.Fatalf("quick behind slow: %q, %v; want its answer while the slow call is out", got, err)
	}
	if d := time.Since(start); d < slow/2 {
		t.Errorf("quick went out after %v, with a call out younger than slowCall (%v)", d, slow)
	}
	select {
	case err := <-slowDone:
		t.Fatalf("the slow call returned (%v) before it was let go", err)
	default:
	}
	close(release)
	if err := <-slowDone; err != nil {
		t.Fatal(err)
	}
	if n := b.locked(b.calls); n != 0 {
		t.Fatalf("%d calls out after both returned", n)
	}
}

func (b *batcher) locked(f func() int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return f()
}

// TestBatcherRecycledOperationsGetTheirOwnReplies: operations are
// recycled (queuedPool) once their caller has its reply, while callers
// around them give up with their batch still out; a recycled one that
// were still sent an earlier operation's outcome would return another
// request's reply.
func TestBatcherRecycledOperationsGetTheirOwnReplies(t *testing.T) {
	e := &echoCalls{delay: 2 * time.Millisecond}
	b := &batcher{call: e.call, slow: time.Millisecond}
	var wg sync.WaitGroup
	for g := range 40 {
		wg.Go(func() {
			for i := range 50 {
				ctx, cancel := context.WithCancel(context.Background())
				if (g+i)%3 == 0 {
					time.AfterFunc(time.Duration(i%4)*time.Millisecond, cancel)
				}
				want := fmt.Sprint("req-", g, "-", i)
				got, err := b.submit(ctx, []byte(want))
				cancel()
				if err == nil && string(got) != want {
					t.Errorf("submit(%s) = %q", want, got)
				} else if err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("submit(%s): %v", want, err)
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("submits still waiting after 20s")
	}
}
