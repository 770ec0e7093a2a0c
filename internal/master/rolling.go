package master

import (
	"errors"
	"fmt"
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

// errStopping answers operations waiting when the cluster begins to stop.
var errStopping = errors.New("the cluster is stopping")

// replace starts a successor for slot's worker from the current
// generation; once it is ready the old one drains (for drain, or the
// shutdown timeout) and stops. w, if not nil, is told whether the successor
// became ready. A slot with a successor already starting (a recycle, a hang
// replacement) gets no second one: w waits for that one.
//
// An error says the successor could not be started at all; w is not told
// then, and whatever served the slot still does. The agent is replaced by
// a swap instead (ops.go): it is a singleton.
func (m *master) replace(slot int, reason string, drain time.Duration, w chan<- result) error {
	st := m.slots[slot]
	switch {
	case m.phase != phaseRunning:
		return errStopping
	case st == nil || (st.state != slotActive && st.state != slotEmpty):
		return fmt.Errorf("slot %d is %s", slot, st.state)
	case st.next != nil:
		if w != nil {
			if st.waiter != nil {
				return errors.New("another operation waits for this slot")
			}
			st.waiter = w
		}
		return nil
	}
	old := st.cur
	if old != nil {
		old.log.Info("replacing", "reason", reason, "generation", m.gen.n)
	}
	ch, err := m.startChild(slot, m.gen)
	if err != nil {
		return err
	}
	st.state, st.next, st.waiter, st.drain = slotActive, ch, w, drain
	if old != nil {
		st.lastReason = reason
	}
	return nil
}

// promote makes slot's ready successor its current process and drains the
// one it replaces.
func (m *master) promote(slot int) {
	st := m.slots[slot]
	ch, old := st.next, st.cur
	st.cur, st.next = ch, nil
	ch.log.Info("replacement ready", "ms", m.since(ch.started).Milliseconds(), "generation", ch.gen.n)
	if old != nil && old.state != childExited && old.state != childDraining {
		drain := st.drain
		if drain <= 0 {
			drain = m.cfg.ShutdownTimeout
		}
		m.stopChild(old, drain, drain+killGrace)
	}
	st.drain = 0
	st.answer(true, "")
}

// beginAgentSwap stops the agent for a successor: it is a singleton, so
// the new one starts once the old one has exited (startAgentSuccessor), the
// messages for it held meanwhile. w is told when the old one has exited.
// It reports false, with nothing to wait for, when there is no agent to
// stop: one restarting after a crash starts from the current generation.
func (m *master) beginAgentSwap(w chan<- result) (bool, error) {
	st := m.slots[agentSlot]
	switch {
	case m.phase != phaseRunning:
		return false, errStopping
	case st.state == slotRestarting:
		return false, nil
	case st.state != slotActive || st.cur == nil || st.next != nil:
		return false, fmt.Errorf("the agent slot is %s", st.state)
	}
	st.cur.log.Info("replacing", "reason", "reload", "generation", m.gen.n)
	st.state, st.waiter, st.lastReason = slotSwapping, w, "reload"
	m.stopChild(st.cur, m.cfg.ShutdownTimeout, m.cfg.ShutdownTimeout+killGrace)
	return true, nil
}

// startAgentSuccessor starts the new agent of a swap; w is told whether it
// became ready. If it cannot start, the restart policy takes the slot over.
func (m *master) startAgentSuccessor(w chan<- result) error {
	st := m.slots[agentSlot]
	if m.phase != phaseRunning {
		return errStopping
	}
	if st.state != slotEmpty {
		return fmt.Errorf("the agent slot is %s", st.state)
	}
	ch, err := m.startChild(agentSlot, m.gen)
	if err != nil {
		m.orphaned(agentSlot, err)
		return err
	}
	st.state, st.next, st.waiter = slotActive, ch, w
	return nil
}

// workerSlots lists the slots that have a worker, or will once it has
// restarted, in order: not the retired ones nor those given up.
func (m *master) workerSlots() []int {
	var out []int
	for slot := 1; slot <= m.maxSlot(); slot++ {
		if st := m.slots[slot]; st != nil && st.state.serving() {
			out = append(out, slot)
		}
	}
	return out
}

func (m *master) maxSlot() int {
	n := 0
	for slot := range m.slots {
		n = max(n, slot)
	}
	return n
}
