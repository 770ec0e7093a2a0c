package master

import (
	"context"
	"fmt"
	"os"
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

func (m *master) scaleTo(n int) {
	if n < 1 || n > MaxWorkers {
		m.log.Warn(fmt.Sprintf("cannot scale to %d workers: workers must be between 1 and %d", n, MaxWorkers))
		m.opDone()
		return
	}
	m.dropGivenUp()
	have := len(m.workerSlots())
	switch {
	case n > have:
		m.addWorker(n)
	case n < have:
		m.removeWorker(n)
	default:
		m.log.Info("scaled", "workers", have)
		m.shareCPUs()
		m.opDone()
	}
}

// dropGivenUp retires the worker slots the crash-loop breaker gave up: a
// scale says how many workers to run, and those run none (their sockets
// were closed when they were given up), so the slot numbers go back to the
// pool for the workers the scale adds.
func (m *master) dropGivenUp() {
	for slot, st := range m.slots {
		if slot != agentSlot && st.givenUp && !st.retired {
			st.retired = true
			m.log.Info("given-up worker slot dropped", "slot", slot)
		}
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
	err := m.replace(slot, "scale up", 0, func(ok bool, why string) {
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
		err := m.replace(adopter, fmt.Sprintf("return socket %d to worker %d", slot, slot), 0, func(ok bool, why string) {
			if !ok {
				m.log.Warn("worker kept serving a returned socket", "slot", adopter, "err", why)
			}
			m.scaleTo(want)
		})
		if err != nil {
			m.log.Warn("worker kept serving a returned socket", "slot", adopter, "err", err)
			m.scaleTo(want)
		}
	})
	if err != nil {
		// Nothing started: undo the slot, so that no socket is bound
		// without a worker to accept on it (an adopter keeps serving a
		// socket it held).
		st := m.slots[slot]
		st.retired, st.sockets = true, nil
		m.desired--
		if adopter == 0 {
			if rerr := m.group.Remove(slot); rerr != nil {
				m.log.Warn("close slot socket", "slot", slot, "err", rerr)
			}
		}
		m.log.Error(fmt.Sprintf("scale up failed: could not start worker %d: %v; %d workers serve", slot, err, len(m.workerSlots())))
		m.shareCPUs()
		m.opDone()
	}
}

func (m *master) removeWorker(want int) {
	slots := m.workerSlots()
	retiring := slots[len(slots)-1]
	adopter := slots[0]
	rs, as := m.slots[retiring], m.slots[adopter]
	before := slices.Clone(as.sockets)
	as.sockets = append(as.sockets, rs.sockets...)
	// The adopter's successor is started for the smaller cluster: its
	// GOMAXPROCS is the share of the workers that remain.
	m.desired--
	failed := func(why string) {
		as.sockets = before
		m.desired++
		m.log.Error(fmt.Sprintf("scale down failed: worker %d could not take over worker %d's sockets: %s", adopter, retiring, why))
		m.opDone()
	}
	err := m.replace(adopter, fmt.Sprintf("take over the sockets of worker %d", retiring), 0, func(ok bool, why string) {
		if !ok {
			failed(why)
			return
		}
		rs.retired, rs.pending = true, false
		rs.sockets = nil
		if rs.cur != nil && !rs.cur.exited {
			m.stopChild(rs.cur, m.cfg.ShutdownTimeout, m.cfg.ShutdownTimeout+killGrace)
		}
		m.log.Info("worker removed", "slot", retiring, "workers", len(m.workerSlots()))
		m.scaleTo(want)
	})
	if err != nil {
		failed(err.Error())
	}
}

// shareCPUs tells the running children their new share of the CPUs after
// the number of workers changed, unless the user set GOMAXPROCS: new
// children are started with it (startChild), running ones set it from here
// on (protocol.Procs).
func (m *master) shareCPUs() {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	f := protocol.Control(protocol.Procs, protocol.ProcsMsg{N: m.procsPerChild()})
	for c := range m.live {
		if !c.exited && c.state != "draining" {
			_ = c.conn.SendFrame(f)
		}
	}
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
