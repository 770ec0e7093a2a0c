package master

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/broodhq/brood/internal/proc"
)

// generation is one build of the application: the binary that was at the
// executable's path when the master started, or when a reload found a new
// one there. Its file stays open so that a rollback can start it again even
// after a deploy replaced the path.
type generation struct {
	n   int
	exe *proc.Executable
}

func newGeneration(path string, n int) (*generation, error) {
	exe, err := proc.HoldExecutable(path)
	if err != nil {
		return nil, err
	}
	return &generation{n: n, exe: exe}, nil
}

// closeGenerations releases every held binary. Called once the loop ended.
func (m *master) closeGenerations() {
	seen := map[*generation]bool{m.gen: true}
	if m.ops.prevGen != nil {
		seen[m.ops.prevGen] = true
	}
	for g := range seen {
		g.exe.Close()
	}
}

// replace starts a successor for slot's worker (or the agent) from the
// current generation; once it is ready the old one drains and stops.
// done, if not nil, learns whether the successor became ready. The agent is
// a singleton: its replacement stops the old agent first and starts the new
// one when the old has exited, the messages for it held meanwhile.
//
// An error says the successor could not be started at all; done is not
// called then, and whatever served the slot still does.
func (m *master) replace(slot int, reason string, drain time.Duration, done func(ok bool, why string)) error {
	st := m.slots[slot]
	if st.next != nil {
		return errors.New("a replacement is already starting")
	}
	old := st.cur
	if old != nil {
		old.log.Info("replacing", "reason", reason, "generation", m.gen.n)
	}
	if slot == agentSlot && old != nil {
		st.onNext = done
		m.stopChild(old, m.cfg.ShutdownTimeout, m.cfg.ShutdownTimeout+killGrace)
		m.agentSwap = true
		return nil
	}
	ch, err := m.startChild(slot, m.gen)
	if err != nil {
		return err
	}
	if old == nil {
		st.cur = ch
		if done != nil {
			st.next, st.cur = ch, nil
			st.onNext = done
		}
		return nil
	}
	st.next, st.onNext = ch, done
	st.drain = drain
	return nil
}

// startSuccessorAgent starts the new agent once the old one has exited.
func (m *master) startSuccessorAgent(st *slotState) {
	done := st.onNext
	if m.phase != phaseRunning {
		st.onNext = nil
		return
	}
	ch, err := m.startChild(agentSlot, m.gen)
	if err != nil {
		st.onNext = nil
		if done != nil {
			done(false, err.Error())
		}
		m.orphaned(agentSlot, err) // unless the rollback started one
		return
	}
	st.next = ch
}

// promote makes slot's ready successor its current worker and drains the
// worker it replaces.
func (m *master) promote(slot int) {
	st := m.slots[slot]
	ch := st.next
	old := st.cur
	st.cur, st.next = ch, nil
	done := st.onNext
	st.onNext = nil
	ch.log.Info("replacement ready", "ms", m.since(ch.started).Milliseconds(), "generation", ch.gen.n)
	if old != nil && !old.exited && old.state != "draining" {
		drain := st.drain
		if drain <= 0 {
			drain = m.cfg.ShutdownTimeout
		}
		m.stopChild(old, drain, drain+killGrace)
	}
	st.drain = 0
	if done != nil {
		done(true, "")
	} else if m.ops.reloading {
		// A replacement the reload did not start (a recycle, a hang) may
		// have held up the reload's next step.
		m.converge()
	}
}

type opKind int

const (
	opReload opKind = iota
	opScale
)

type op struct {
	kind opKind
	n    int // opScale: workers wanted
}

// opQueue runs reloads and scaling one at a time: each changes which
// workers serve which sockets, and two at once would fight over the slots.
type opQueue struct {
	busy      bool
	queue     []op
	prevGen   *generation // reload: the generation to roll back to
	rolling   bool        // rolling back
	reloading bool
}

func (q *opQueue) clear() { q.queue = nil }

func (m *master) enqueue(o op) {
	if m.phase != phaseRunning {
		m.log.Warn("ignored: the cluster is not running", "op", o.String())
		return
	}
	if m.ops.busy {
		// A reload asked for during a reload is folded into one more.
		if o.kind == opReload && slices.ContainsFunc(m.ops.queue, func(q op) bool { return q.kind == opReload }) {
			m.log.Info("reload already queued")
			return
		}
		m.log.Info("queued behind the operation in progress", "op", o.String())
		m.ops.queue = append(m.ops.queue, o)
		return
	}
	m.runOp(o)
}

func (o op) String() string {
	if o.kind == opReload {
		return "reload"
	}
	return fmt.Sprintf("scale to %d", o.n)
}

func (m *master) opDone() {
	m.ops.busy = false
	if m.phase != phaseRunning || len(m.ops.queue) == 0 {
		return
	}
	next := m.ops.queue[0]
	m.ops.queue = m.ops.queue[1:]
	m.runOp(next)
}

func (m *master) runOp(o op) {
	m.ops.busy = true
	switch o.kind {
	case opReload:
		m.startReload()
	case opScale:
		m.scaleTo(o.n)
	}
}

// startReload rolls the binary now at the executable's path out to every
// slot, one slot at a time, then to the agent.
func (m *master) startReload() {
	next, err := newGeneration(m.gen.exe.Path, m.gen.n+1)
	if err != nil {
		m.log.Error("reload refused: cannot open the executable", "err", err)
		m.opDone()
		return
	}
	m.notifyReloading()
	m.log.Info("reload started", "generation", next.n, "executable", next.exe.Path)
	if m.ops.prevGen != nil && m.ops.prevGen != m.gen {
		m.ops.prevGen.exe.Close()
	}
	m.ops.prevGen, m.gen = m.gen, next
	m.ops.rolling = false
	m.ops.reloading = true
	m.converge()
}

// converge replaces, one at a time, every process not yet running the
// current generation; it is called again each time a replacement finishes.
func (m *master) converge() {
	if m.phase != phaseRunning || !m.ops.reloading {
		m.ops.busy, m.ops.reloading = false, false
		return
	}
	for _, slot := range m.workerSlots() {
		st := m.slots[slot]
		if st.next != nil {
			return // one at a time
		}
		if st.cur != nil && st.cur.gen != m.gen {
			m.replaceForReload(slot)
			return
		}
	}
	if a := m.slots[agentSlot]; (a.cur == nil || a.cur.gen != m.gen) && a.next == nil && !m.agentSwap && !a.pending && !a.givenUp {
		m.replaceForReload(agentSlot)
		return
	}
	if m.agentSwap {
		return
	}
	if m.ops.rolling {
		m.log.Error("reload rolled back: the previous generation serves", "generation", m.gen.n)
	} else {
		m.log.Info("reload complete", "generation", m.gen.n)
	}
	m.ops.reloading = false
	m.notifyReady()
	m.opDone()
}

// replaceForReload replaces slot's process with one of the current
// generation; a successor that cannot even be started fails the step as
// one that died does.
func (m *master) replaceForReload(slot int) {
	step := m.reloadStep(slot)
	if err := m.replace(slot, "reload", 0, step); err != nil {
		step(false, err.Error())
		m.orphaned(slot, err)
	}
}

func (m *master) reloadStep(slot int) func(ok bool, why string) {
	return func(ok bool, why string) {
		if ok {
			m.converge()
			return
		}
		name := "agent"
		if slot != agentSlot {
			name = fmt.Sprintf("worker %d", slot)
		}
		if m.ops.rolling || m.ops.prevGen == nil {
			m.log.Error("rollback failed: the slot is left to the restart policy", "slot", slot, "err", why)
			m.ops.reloading = false
			m.notifyReady()
			m.opDone()
			return
		}
		m.log.Error(fmt.Sprintf("reload failed: the new %s did not become ready: %s; rolling back to generation %d", name, why, m.ops.prevGen.n))
		m.ops.rolling = true
		failed := m.gen
		m.gen = m.ops.prevGen
		m.ops.prevGen = failed
		m.converge()
	}
}

// workerSlots lists the slots that have a worker, or will once it has
// restarted, in order: not the retired ones nor those given up.
func (m *master) workerSlots() []int {
	var out []int
	for slot, st := range m.slots {
		if slot != agentSlot && !st.retired && !st.givenUp {
			out = append(out, slot)
		}
	}
	slices.Sort(out)
	return out
}
