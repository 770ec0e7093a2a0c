package master

import (
	"fmt"
	"slices"
)

// Reloads and scaling are operations: each runs as straight-line code on a
// goroutine of its own, one at a time, asking the loop (which owns all
// state) to do each step and waiting for its answer, as tableflip's
// Upgrade does. A step that replaces a process waits for the successor to
// be ready; a stop of the cluster answers every wait at once, and the
// operation returns.

type opKind int

const (
	opReload opKind = iota
	opScale
)

type op struct {
	kind opKind
	n    int // opScale: workers wanted

	// Progress, for status; written on the loop.
	from        int  // opScale: workers when it began
	done, total int  // opReload: processes replaced, and to replace
	rollback    bool // opReload: rolling back
}

// progress is o for status: "reload 2/4" while the second of four
// processes is replaced, "scale 4→2".
func (o *op) progress() string {
	switch {
	case o.kind == opScale:
		return fmt.Sprintf("scale %d→%d", o.from, o.n)
	case o.total == 0:
		return "reload"
	case o.rollback:
		return fmt.Sprintf("rollback %d/%d", min(o.done+1, o.total), o.total)
	}
	return fmt.Sprintf("reload %d/%d", min(o.done+1, o.total), o.total)
}

// staleCount is how many processes a reload to m.gen has to replace; on
// the loop.
func (m *master) staleCount() int {
	n := 0
	for _, slot := range append(m.workerSlots(), agentSlot) {
		if st := m.slots[slot]; st != nil && st.cur != nil && st.cur.gen != m.gen {
			n++
		}
	}
	return n
}

// progressed records, from an operation, that one more process of a
// reload was replaced.
func (m *master) progressed() {
	m.call(func() {
		if o := m.ops.running; o != nil {
			o.done++
		}
	})
}

func (o op) String() string {
	if o.kind == opReload {
		return "reload"
	}
	return fmt.Sprintf("scale to %d", o.n)
}

// opQueue is the loop's record of operations: the one running and those
// waiting for it. Two at once would fight over the slots.
type opQueue struct {
	running *op
	queue   []op
	prevGen *generation // the generation a reload rolls back to
}

func (q *opQueue) clear() { q.queue = nil }

// enqueue runs o now or after the operation in progress. It runs on the
// loop.
func (m *master) enqueue(o op) {
	if m.phase != phaseRunning {
		m.log.Warn("ignored: the cluster is not running", "op", o.String())
		return
	}
	if m.ops.running != nil {
		// A reload asked for during a reload is folded into one more.
		if o.kind == opReload && slices.ContainsFunc(m.ops.queue, func(q op) bool { return q.kind == opReload }) {
			m.log.Info("reload already queued")
			return
		}
		m.log.Info("queued behind the operation in progress", "op", o.String())
		m.ops.queue = append(m.ops.queue, o)
		return
	}
	m.startOp(o)
}

func (m *master) startOp(o op) {
	m.ops.running = &o
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		switch o.kind {
		case opReload:
			m.reload()
		case opScale:
			m.scale(o.n)
		}
		m.post(event{kind: evOpDone})
	}()
}

// opDone starts the next operation, if the cluster still runs.
func (m *master) opDone() {
	m.ops.running = nil
	if m.phase != phaseRunning || len(m.ops.queue) == 0 {
		return
	}
	next := m.ops.queue[0]
	m.ops.queue = m.ops.queue[1:]
	m.startOp(next)
}

// call runs fn on the loop and waits for it. It returns false, without
// running fn, once the loop has ended.
func (m *master) call(fn func()) bool {
	done := make(chan struct{})
	select {
	case m.events <- event{kind: evRequest, fn: func() { fn(); close(done) }}:
	case <-m.quit:
		return false
	}
	select {
	case <-done:
		return true
	case <-m.quit:
		return false
	}
}

// wait blocks until the loop answers w, or has ended.
func (m *master) wait(w chan result) result {
	select {
	case r := <-w:
		return r
	case <-m.quit:
		return result{why: errStopping.Error()}
	}
}

// replaceAndWait replaces slot's process and waits for the successor.
// started is false when the successor could not even be started.
func (m *master) replaceAndWait(slot int, reason string) (r result, started bool) {
	w := make(chan result, 1)
	var err error
	if !m.call(func() { err = m.replace(slot, reason, 0, w) }) {
		return result{why: errStopping.Error()}, false
	}
	if err != nil {
		return result{why: err.Error()}, false
	}
	return m.wait(w), true
}

// swapAgent replaces the agent: stop the old one, wait for it to exit,
// start the new one, wait for it to be ready.
func (m *master) swapAgent() result {
	w := make(chan result, 1)
	var err error
	swapping := false
	if !m.call(func() { swapping, err = m.beginAgentSwap(w) }) {
		return result{why: errStopping.Error()}
	}
	if err != nil {
		return result{why: err.Error()}
	}
	if !swapping {
		return result{ok: true} // it restarts from the current generation
	}
	if r := m.wait(w); !r.ok {
		return r
	}
	if !m.call(func() { err = m.startAgentSuccessor(w) }) {
		return result{why: errStopping.Error()}
	}
	if err != nil {
		return result{why: err.Error()}
	}
	return m.wait(w)
}

// running reports, from an operation, whether the cluster still runs.
func (m *master) running() bool {
	ok := false
	m.call(func() { ok = m.phase == phaseRunning })
	return ok
}

// reload rolls the binary now at the executable's path out to every
// worker slot, one at a time, then to the agent; if a new process does not
// become ready, it rolls back to the previous generation the same way.
func (m *master) reload() {
	var err error
	m.call(func() {
		var next *generation
		if next, err = newGeneration(m.gen.exe.Path, m.gen.n+1); err != nil {
			m.log.Error("reload refused: cannot open the executable", "err", err)
			m.stats.reloaded("refused")
			return
		}
		m.notifyReloading()
		m.log.Info("reload started", "generation", next.n, "executable", next.exe.Path)
		if m.ops.prevGen != nil && m.ops.prevGen != m.gen {
			m.ops.prevGen.exe.Close()
		}
		m.ops.prevGen, m.gen = m.gen, next
		if o := m.ops.running; o != nil {
			o.total = m.staleCount()
		}
	})
	if err != nil {
		return
	}
	rolling := false
	for {
		var slot int
		found := false
		m.call(func() { slot, found = m.staleSlot() })
		if !found {
			break
		}
		var r result
		if slot == agentSlot {
			r = m.swapAgent()
		} else {
			r, _ = m.replaceAndWait(slot, "reload")
		}
		if !m.running() {
			return
		}
		if r.ok {
			m.progressed()
			continue
		}
		end := false
		m.call(func() {
			name := "agent"
			if slot != agentSlot {
				name = fmt.Sprintf("worker %d", slot)
			}
			if rolling {
				m.log.Error("rollback failed: the slot is left to the restart policy", "slot", slot, "err", r.why)
				m.stats.reloaded("failed")
				m.notifyReady()
				end = true
				return
			}
			m.log.Error(fmt.Sprintf("reload failed: the new %s did not become ready: %s; rolling back to generation %d", name, r.why, m.ops.prevGen.n))
			m.gen, m.ops.prevGen = m.ops.prevGen, m.gen
			m.stats.rollbacks++
			if o := m.ops.running; o != nil {
				o.done, o.total, o.rollback = 0, m.staleCount(), true
			}
		})
		if end {
			return
		}
		rolling = true
	}
	m.call(func() {
		if rolling {
			m.log.Error("reload rolled back: the previous generation serves", "generation", m.gen.n)
			m.stats.reloaded("rolled_back")
		} else {
			m.log.Info("reload complete", "generation", m.gen.n)
			m.stats.reloaded("ok")
		}
		m.notifyReady()
	})
}

// staleSlot returns the next slot whose process is not of the current
// generation, workers first, or one whose successor is starting (a recycle
// or a hang replacement, which the reload waits for); on the loop.
func (m *master) staleSlot() (int, bool) {
	for _, slot := range m.workerSlots() {
		st := m.slots[slot]
		if st.next != nil || (st.state == slotActive && st.cur != nil && st.cur.gen != m.gen) {
			return slot, true
		}
	}
	if a := m.slots[agentSlot]; a.state == slotActive && a.next == nil && a.cur != nil && a.cur.gen != m.gen {
		return agentSlot, true
	}
	return 0, false
}
