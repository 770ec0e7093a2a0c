package schedule

import (
	"sync"
	"time"
)

// FakeClock is a Clock that only moves when told to, for deterministic tests
// here and in packages built on the scheduler. Its zero value is not usable;
// call NewFakeClock.
type FakeClock struct {
	// advancing serializes Advance calls so that two of them cannot fire the
	// same timers out of order; mu is never held while a callback runs,
	// because callbacks call back into the clock.
	advancing sync.Mutex

	mu     sync.Mutex
	now    time.Time
	seq    uint64
	timers []*fakeTimer
}

type fakeTimer struct {
	c    *FakeClock
	when time.Time
	seq  uint64 // breaks ties between timers due at the same instant: first made, first fired
	f    func()
}

// NewFakeClock returns a FakeClock that reads t0 until it is advanced.
func NewFakeClock(t0 time.Time) *FakeClock {
	return &FakeClock{now: t0}
}

// Now returns the clock's current time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc registers f to be called by Advance once the clock reaches
// Now()+d. A timer that is already due (d <= 0) is not called at once but by
// the next Advance, Advance(0) included, so that callers holding locks are
// never re-entered.
func (c *FakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{c: c, when: c.now.Add(d), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves the clock forward by d in one jump, as if the process had
// been paused for d, then calls every timer now due, earliest first, in the
// caller's goroutine; timers that those calls create and that are already due
// are called too before Advance returns. Callbacks see Now() as the new time,
// not their deadline, so a periodic job sees one tick per Advance however
// large d is: to see every tick, advance one period at a time.
func (c *FakeClock) Advance(d time.Duration) {
	c.advancing.Lock()
	defer c.advancing.Unlock()

	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	for {
		t := c.popDue()
		if t == nil {
			return
		}
		t.f()
	}
}

// Pending returns how many timers are waiting to fire, so that tests can
// check that a stopped or removed job left nothing behind.
func (c *FakeClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

func (c *FakeClock) popDue() *fakeTimer {
	c.mu.Lock()
	defer c.mu.Unlock()
	best := -1
	for i, t := range c.timers {
		if t.when.After(c.now) {
			continue
		}
		if best < 0 || t.when.Before(c.timers[best].when) ||
			(t.when.Equal(c.timers[best].when) && t.seq < c.timers[best].seq) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	t := c.timers[best]
	c.timers = append(c.timers[:best], c.timers[best+1:]...)
	return t
}

// Stop cancels the timer and reports whether it was still pending.
func (t *fakeTimer) Stop() bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range c.timers {
		if p == t {
			c.timers = append(c.timers[:i], c.timers[i+1:]...)
			return true
		}
	}
	return false
}
