package messenger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/broodhq/brood/internal/wire"
)

// OrphanWait bounds how long a stopping process waits for call handlers
// whose callers gave up or are gone (their context has ended) before it
// stops without them; the wait is logged.
const OrphanWait = 2 * time.Second

// ErrCallerGone is the cause of a Handle function's context when its caller
// gave up (its context ended) or exited before the answer.
var ErrCallerGone = errors.New("the caller gave up or is gone")

// errCallerDeadline is the cause of a handler's context at its caller's
// deadline; made once, not at every call.
var errCallerDeadline = fmt.Errorf("%w: the caller's deadline passed", ErrCallerGone)

// callKey names a call as its handler sees it: caller and call id.
type callKey struct {
	caller int
	id     uint64
}

// running is one Handle function running.
type running struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// inflight is the Handle functions running, by call, so that a caller's
// cancel or exit ends their context.
type inflight struct {
	mu sync.Mutex
	m  map[callKey]*running
}

// handlerContext makes the context of a call's handler: it has the
// caller's deadline and ends when the caller gives up or is gone, or this
// process stops. done must be called when the handler returns.
func (m *Messenger) handlerContext(f *wire.Frame) (ctx context.Context, done func()) {
	ctx, cancel := context.WithCancelCause(m.ctx)
	stop := func() {}
	if f.Deadline != 0 {
		var c context.CancelFunc
		ctx, c = context.WithDeadlineCause(ctx, time.Unix(0, f.Deadline), errCallerDeadline)
		stop = c
	}
	k := callKey{f.FromPID, f.CallID}
	r := &running{ctx: ctx, cancel: cancel}
	m.inflight.mu.Lock()
	m.inflight.m[k] = r
	m.inflight.mu.Unlock()
	return ctx, func() {
		m.inflight.mu.Lock()
		if m.inflight.m[k] == r {
			delete(m.inflight.m, k)
		}
		m.inflight.mu.Unlock()
		stop()
		cancel(nil)
	}
}

// cancelHandler ends the context of the handler of call id from caller.
func (m *Messenger) cancelHandler(caller int, id uint64, why string) {
	m.inflight.mu.Lock()
	r := m.inflight.m[callKey{caller, id}]
	m.inflight.mu.Unlock()
	if r != nil {
		r.cancel(fmt.Errorf("%w: %s", ErrCallerGone, why))
	}
}

// orphanHandlers ends the context of every handler working for caller.
func (m *Messenger) orphanHandlers(caller int, why string) {
	m.inflight.mu.Lock()
	var rs []*running
	for k, r := range m.inflight.m {
		if k.caller == caller {
			rs = append(rs, r)
		}
	}
	m.inflight.mu.Unlock()
	for _, r := range rs {
		r.cancel(fmt.Errorf("%w: %s", ErrCallerGone, why))
	}
}

// counts returns how many handlers run, and how many of them have a
// context that ended.
func (f *inflight) counts() (n, orphans int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.m {
		n++
		if r.ctx.Err() != nil {
			orphans++
		}
	}
	return n, orphans
}

// OnMembers calls fn with the ready agent's pid (0 while there is none)
// and the ready workers' pids, by slot: once soon after it is registered,
// with the membership as this process knows it then, and again after each
// change of it, that is whenever a process becomes ready or exits, or the
// agent starts stopping for a replacement. Changes are announced by the
// master to every process at once, so all see the same sequence, each a
// little apart; a process that is still starting sees the membership as it
// was when it started, then the changes. fn runs on a goroutine of its own,
// one call at a time; when changes come faster than fn returns, it sees the
// latest only. It runs until the process stops.
func (m *Messenger) OnMembers(fn func(agent int, apps []int)) {
	if fn == nil {
		panic("messenger: OnMembers with a nil function")
	}
	w := &m.watch
	w.mu.Lock()
	w.fns = append(w.fns, fn)
	start := w.wake == nil
	if start {
		w.wake = make(chan struct{}, 1)
	}
	w.mu.Unlock()
	if start {
		go m.watchMembers()
	} else {
		w.notify(true)
	}
}

// watchers are the OnMembers functions.
type watchers struct {
	mu    sync.Mutex
	fns   []func(agent int, apps []int)
	fresh int // how many fns have not been called yet
	wake  chan struct{}
}

func (w *watchers) notify(added bool) {
	w.mu.Lock()
	if w.wake == nil {
		w.mu.Unlock()
		return
	}
	if added {
		w.fresh++
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (m *Messenger) watchMembers() {
	w := &m.watch
	var last *membersSeen
	for {
		cur := m.members.Load()
		w.mu.Lock()
		fns := slices.Clone(w.fns)
		fresh := w.fresh
		w.fresh = 0
		w.mu.Unlock()
		seen := &membersSeen{cur.Agent, slices.Clone(cur.Apps)}
		changed := last == nil || last.agent != seen.agent || !slices.Equal(last.apps, seen.apps)
		for i, fn := range fns {
			if changed || i >= len(fns)-fresh {
				m.safelyMembers(fn, seen)
			}
		}
		last = seen
		select {
		case <-w.wake:
		case <-m.ctx.Done():
			return
		}
	}
}

type membersSeen struct {
	agent int
	apps  []int
}

func (m *Messenger) safelyMembers(fn func(int, []int), s *membersSeen) {
	defer func() {
		if p := recover(); p != nil {
			m.log.Error("OnMembers function panicked", "panic", fmt.Sprint(p))
		}
	}()
	fn(s.agent, slices.Clone(s.apps))
}
