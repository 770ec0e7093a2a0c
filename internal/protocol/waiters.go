package protocol

import "sync"

// Waiters matches answers arriving on a reader goroutine to the requests
// waiting for them, by id: job queries to the agent, rounds of log
// reopening, and an agent's wait for its round. Safe for concurrent use.
type Waiters[T any] struct {
	mu   sync.Mutex
	next uint64
	wait map[uint64]chan T
}

// Add registers a request whose answers arrive on a channel of the given
// buffer; remove forgets it.
func (w *Waiters[T]) Add(buffer int) (id uint64, answers chan T, remove func()) {
	answers = make(chan T, buffer)
	w.mu.Lock()
	w.next++
	id = w.next
	if w.wait == nil {
		w.wait = map[uint64]chan T{}
	}
	w.wait[id] = answers
	w.mu.Unlock()
	return id, answers, func() {
		w.mu.Lock()
		delete(w.wait, id)
		w.mu.Unlock()
	}
}

// Get returns the channel of request id, nil if none waits for it.
func (w *Waiters[T]) Get(id uint64) chan T {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.wait[id]
}
