package master

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/broodhq/brood/internal/protocol"
)

// Scaling never closes a socket that may hold queued connections: Linux
// resets them. Scaling down hands the retiring slot's sockets to a surviving
// slot, whose worker is replaced (through the rolling path, so it never
// stops serving) by one that serves its own sockets and the retiring one's;
// only then does the retiring worker drain and stop. Scaling up takes a
// retired socket back the same way, or binds a new one.

// scale adds or removes workers, one at a time, until n serve. It runs as
// an operation (ops.go).
func (m *master) scale(n int) {
	if n < 1 || n > m.cfg.MaxWorkers {
		m.call(func() {
			m.log.Warn(fmt.Sprintf("cannot scale to %d workers: workers must be between 1 and %d", n, m.cfg.MaxWorkers))
		})
		return
	}
	for {
		have := 0
		if !m.call(func() {
			m.dropGivenUp()
			have = len(m.workerSlots())
			if o := m.ops.running; o != nil && o.kind == opScale && o.from == 0 {
				o.from = have
			}
			if have == n {
				m.log.Info("scaled", "workers", have)
				m.shareCPUs()
			}
		}) {
			return
		}
		switch {
		case n > have:
			if !m.addWorker() {
				return
			}
		case n < have:
			if !m.removeWorker() {
				return
			}
		default:
			return
		}
		if !m.running() {
			return
		}
	}
}

// dropGivenUp retires the worker slots the crash-loop breaker gave up: a
// scale says how many workers to run, and those run none (their sockets
// were closed when they were given up), so the slot numbers go back to the
// pool for the workers the scale adds. On the loop.
func (m *master) dropGivenUp() {
	for slot, st := range m.slots {
		if slot != agentSlot && st.state == slotGivenUp {
			st.state = slotRetired
			m.log.Info("given-up worker slot dropped", "slot", slot)
		}
	}
}

// addWorker adds one worker slot: the lowest free number, with its own
// socket back from the worker that held it or newly bound. It reports
// whether the scale may go on.
func (m *master) addWorker() bool {
	var slot, adopter int
	var err error
	m.call(func() {
		slot = 1
		for st := m.slots[slot]; st != nil && st.state != slotRetired; st = m.slots[slot] {
			slot++
		}
		adopter = m.holderOf(slot)
		if adopter == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err = m.group.Add(ctx, slot)
			cancel()
			if err != nil {
				m.log.Error("scale up failed", "err", err)
				return
			}
		}
		m.slots[slot] = &slotState{backoff: m.cfg.RestartMin, sockets: []int{slot}}
		m.desired++
	})
	if err != nil {
		return false
	}
	r, started := m.replaceAndWait(slot, "scale up")
	switch {
	case !started:
		// Nothing started: undo the slot, so that no socket is bound
		// without a worker to accept on it (an adopter keeps serving a
		// socket it held).
		m.call(func() {
			st := m.slots[slot]
			if st.state != slotEmpty {
				return // the cluster stopped
			}
			st.state, st.sockets = slotRetired, nil
			m.desired--
			if adopter == 0 {
				if err := m.group.Remove(slot); err != nil {
					m.log.Warn("close slot socket", "slot", slot, "err", err)
				}
			}
			m.log.Error(fmt.Sprintf("scale up failed: could not start worker %d: %s; %d workers serve", slot, r.why, len(m.workerSlots())))
			m.shareCPUs()
		})
		return false
	case !r.ok:
		m.call(func() {
			m.log.Error(fmt.Sprintf("scale up failed: worker %d did not become ready: %s; the restart policy takes over", slot, r.why))
		})
		return false
	}
	m.call(func() { m.log.Info("worker added", "slot", slot, "workers", len(m.workerSlots())) })
	if adopter == 0 {
		return true
	}
	// The adopter still accepts on this socket too; give it back.
	m.call(func() {
		as := m.slots[adopter]
		as.sockets = slices.DeleteFunc(as.sockets, func(id int) bool { return id == slot })
	})
	if r, _ := m.replaceAndWait(adopter, fmt.Sprintf("return socket %d to worker %d", slot, slot)); !r.ok {
		m.call(func() { m.log.Warn("worker kept serving a returned socket", "slot", adopter, "err", r.why) })
	}
	return true
}

// removeWorker retires the highest worker slot: the lowest one's worker is
// replaced by one that serves the retiring slot's sockets too, then the
// retiring worker drains and stops. It reports whether the scale may go on.
func (m *master) removeWorker() bool {
	var retiring, adopter int
	var before []int
	m.call(func() {
		slots := m.workerSlots()
		retiring, adopter = slots[len(slots)-1], slots[0]
		rs, as := m.slots[retiring], m.slots[adopter]
		before = slices.Clone(as.sockets)
		as.sockets = append(as.sockets, rs.sockets...)
		// The adopter's successor is started for the smaller cluster: its
		// GOMAXPROCS is the share of the workers that remain.
		m.desired--
	})
	r, _ := m.replaceAndWait(adopter, fmt.Sprintf("take over the sockets of worker %d", retiring))
	ok := false
	m.call(func() {
		as, rs := m.slots[adopter], m.slots[retiring]
		if !r.ok {
			as.sockets = before
			m.desired++
			m.log.Error(fmt.Sprintf("scale down failed: worker %d could not take over worker %d's sockets: %s", adopter, retiring, r.why))
			return
		}
		ok = true
		rs.state, rs.sockets = slotRetired, nil
		if rs.cur != nil && rs.cur.state != childExited {
			m.stopChild(rs.cur, m.cfg.ShutdownTimeout, m.cfg.ShutdownTimeout+killGrace)
		}
		m.log.Info("worker removed", "slot", retiring, "workers", len(m.workerSlots()))
	})
	return ok
}

// shareCPUs tells the running children their new share of the CPUs after
// the number of workers changed, unless the user set GOMAXPROCS: new
// children are started with it (startChild), running ones set it from here
// on (protocol.Procs). On the loop.
func (m *master) shareCPUs() {
	if !m.cfg.ShareCPUs {
		return
	}
	f := protocol.Control(protocol.Procs, protocol.ProcsMsg{N: m.procsPerChild()})
	for c := range m.live {
		if c.state == childStarting || c.state == childReady {
			_ = c.conn.SendFrame(f)
		}
	}
}

// holderOf returns the slot whose worker serves socket id, or 0.
func (m *master) holderOf(id int) int {
	for slot, st := range m.slots {
		if slot != agentSlot && st.state != slotRetired && slices.Contains(st.sockets, id) {
			return slot
		}
	}
	return 0
}
