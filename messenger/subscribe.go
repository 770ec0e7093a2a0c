package messenger

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
)

// subTable is an immutable snapshot of the subscriptions: the dispatcher
// reads it for every message without a lock, and On, Once and Handle
// replace it.
type subTable struct {
	on     map[string][]*sub
	handle map[string]*handler
}

// handler is a Handle function, with what serveInline learnt of it.
type handler struct {
	fn HandlerFunc
	// goUntil: until then (Unix ns) its calls run in goroutines of their
	// own, not on a channel's reader: a run took longer than inlineSlow.
	goUntil atomic.Int64
}

// HandlerFunc answers a Call; see Messenger.Handle.
type HandlerFunc = func(ctx context.Context, msg Message) (any, error)

type sub struct {
	fn    func(Message)
	once  bool
	fired atomic.Bool
}

// On calls fn for every message with this action, in the order messages
// arrive; functions registered for the same action run in the order they
// were registered. fn runs on the Messenger's one dispatching goroutine: a
// slow fn delays the messages behind it (but not replies to Call, so fn may
// call). A panic in fn is logged and the process carries on.
func (m *Messenger) On(action string, fn func(Message)) { m.subscribe(action, fn, false) }

// Once is On for the next message with this action only.
func (m *Messenger) Once(action string, fn func(Message)) { m.subscribe(action, fn, true) }

func (m *Messenger) subscribe(action string, fn func(Message), once bool) {
	if fn == nil {
		panic(fmt.Sprintf("messenger: On(%q) with a nil function", action))
	}
	m.subMu.Lock()
	defer m.subMu.Unlock()
	old := m.subs.Load()
	t := &subTable{on: maps.Clone(old.on), handle: old.handle}
	if t.on == nil {
		t.on = map[string][]*sub{}
	}
	t.on[action] = append(slices.Clip(t.on[action]), &sub{fn: fn, once: once})
	m.subs.Store(t)
}

// unsubscribe removes a Once subscription that has fired.
func (m *Messenger) unsubscribe(action string, s *sub) {
	m.subMu.Lock()
	defer m.subMu.Unlock()
	old := m.subs.Load()
	t := &subTable{on: maps.Clone(old.on), handle: old.handle}
	t.on[action] = slices.DeleteFunc(slices.Clone(t.on[action]), func(x *sub) bool { return x == s })
	if len(t.on[action]) == 0 {
		delete(t.on, action)
	}
	m.subs.Store(t)
}

// Handle answers Calls for action: what fn returns is encoded as JSON and
// sent back, and an error it returns reaches the caller as a *RemoteError.
// Calls run concurrently (see "Where a handler runs" in the package
// documentation), each with a ctx that ends when this process stops. One action has one handler: registering a second panics.
func (m *Messenger) Handle(action string, fn func(ctx context.Context, msg Message) (any, error)) {
	if fn == nil {
		panic(fmt.Sprintf("messenger: Handle(%q) with a nil function", action))
	}
	m.subMu.Lock()
	defer m.subMu.Unlock()
	old := m.subs.Load()
	if _, dup := old.handle[action]; dup {
		panic(fmt.Sprintf("messenger: Handle(%q) registered twice; one action has one handler", action))
	}
	t := &subTable{on: old.on, handle: maps.Clone(old.handle)}
	if t.handle == nil {
		t.handle = map[string]*handler{}
	}
	t.handle[action] = &handler{fn: fn}
	m.subs.Store(t)
}
