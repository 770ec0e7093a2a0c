package master

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Scaling never closes a socket that may hold queued connections: Linux
// resets them. Scaling down hands the retiring slot's sockets to a surviving
// slot, whose worker is replaced (through the rolling path, so it never
// stops serving) by one that serves its own sockets and the retiring one's;
// only then does the retiring worker drain and stop. Scaling up takes a
// retired socket back the same way, or binds a new one.

func (m *master) scaleTo(n int) {
	if n < 1 || n > MaxWorkers {
		m.log.Warn(fmt.Sprintf("cannot scale to %d workers: workers must be between 1 and %d", n, MaxWorkers))
		m.opDone()
		return
	}
	have := len(m.workerSlots())
	switch {
	case n > have:
		m.addWorker(n)
	case n < have:
		m.removeWorker(n)
	default:
		m.log.Info("scaled", "workers", have)
		m.opDone()
	}
}

func (m *master) addWorker(want int) {
	slot := 1
	for st := m.slots[slot]; st != nil && !st.retired; st = m.slots[slot] {
		slot++
	}
	adopter := m.holderOf(slot)
	if adopter == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := m.group.Add(ctx, slot)
		cancel()
		if err != nil {
			m.log.Error("scale up failed", "err", err)
			m.opDone()
			return
		}
	}
	m.slots[slot] = &slotState{backoff: m.cfg.RestartMin, sockets: []int{slot}}
	m.desired++
	m.replace(slot, "scale up", 0, func(ok bool, why string) {
		if !ok {
			m.log.Error(fmt.Sprintf("scale up failed: worker %d did not become ready: %s; the restart policy takes over", slot, why))
			m.opDone()
			return
		}
		m.log.Info("worker added", "slot", slot, "workers", len(m.workerSlots()))
		if adopter == 0 {
			m.scaleTo(want)
			return
		}
		// The adopter still accepts on this socket too; give it back.
		as := m.slots[adopter]
		as.sockets = slices.DeleteFunc(as.sockets, func(id int) bool { return id == slot })
		m.replace(adopter, fmt.Sprintf("return socket %d to worker %d", slot, slot), 0, func(ok bool, why string) {
			if !ok {
				m.log.Warn("worker kept serving a returned socket", "slot", adopter, "err", why)
			}
			m.scaleTo(want)
		})
	})
}

func (m *master) removeWorker(want int) {
	slots := m.workerSlots()
	retiring := slots[len(slots)-1]
	adopter := slots[0]
	rs, as := m.slots[retiring], m.slots[adopter]
	before := slices.Clone(as.sockets)
	as.sockets = append(as.sockets, rs.sockets...)
	m.replace(adopter, fmt.Sprintf("take over the sockets of worker %d", retiring), 0, func(ok bool, why string) {
		if !ok {
			as.sockets = before
			m.log.Error(fmt.Sprintf("scale down failed: worker %d could not take over worker %d's sockets: %s", adopter, retiring, why))
			m.opDone()
			return
		}
		rs.retired, rs.pending = true, false
		rs.sockets = nil
		m.desired--
		if rs.cur != nil && !rs.cur.exited {
			m.stopChild(rs.cur, m.cfg.ShutdownTimeout, m.cfg.ShutdownTimeout+killGrace)
		}
		m.log.Info("worker removed", "slot", retiring, "workers", len(m.workerSlots()))
		m.scaleTo(want)
	})
}

// holderOf returns the slot whose worker serves socket id, or 0.
func (m *master) holderOf(id int) int {
	for slot, st := range m.slots {
		if slot != agentSlot && !st.retired && slices.Contains(st.sockets, id) {
			return slot
		}
	}
	return 0
}
