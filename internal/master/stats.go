package master

import (
	"github.com/broodhq/brood/internal/protocol"
)

// clusterStats is what the master counts for the cluster's /metrics
// beyond what slotState keeps; the loop owns it.
type clusterStats struct {
	reloads   map[string]uint64 // by result: ok, rolled_back, failed, refused
	rollbacks uint64

	// The agent's metrics carry a replaced agent's last counts forward and
	// add its successor's, as for any process: so each agent is sent the
	// counts less those its predecessors were sent (base), and the sum
	// stays the master's total.
	agentPID int                     // the agent last sent counts
	lastSent protocol.MasterStatsMsg // the totals it was last sent
	base     protocol.MasterStatsMsg // the totals earlier agents were sent
}

func (s *clusterStats) reloaded(result string) {
	if s.reloads == nil {
		s.reloads = map[string]uint64{}
	}
	s.reloads[result]++
}

// statsMsg is the master's counts, for the agent; on the loop.
func (m *master) statsMsg() protocol.MasterStatsMsg {
	msg := protocol.MasterStatsMsg{
		WorkersWanted: len(m.workerSlots()),
		Reloads:       map[string]uint64{},
		Rollbacks:     m.stats.rollbacks,
		Slots:         map[int]protocol.SlotStatsMsg{},
	}
	for k, v := range m.stats.reloads {
		msg.Reloads[k] = v
	}
	for c := range m.live {
		if c.slot != agentSlot && c.state == childReady {
			msg.WorkersReady++
		}
	}
	for slot, st := range m.slots {
		msg.Slots[slot] = protocol.SlotStatsMsg{Restarts: uint64(st.restarts), HangKills: st.hangKills, Recycles: st.recycles}
	}
	return msg
}

// sendStats tells the agent the master's counts; on the loop, every
// housekeeping tick. An agent that is not there misses a tick, which the
// next one makes up for: the counts are totals.
func (m *master) sendStats() {
	st := m.slots[agentSlot]
	if st == nil || st.cur == nil || !st.cur.routable() || st.cur.conn == nil {
		return
	}
	total := m.statsMsg()
	if pid := st.cur.pid; pid != m.stats.agentPID {
		if m.stats.agentPID != 0 {
			m.stats.base = m.stats.lastSent
		}
		m.stats.agentPID = pid
	}
	if err := st.cur.conn.SendFrame(protocol.Control(protocol.MasterStats, since(total, m.stats.base))); err != nil {
		st.cur.log.Debug("send the master's counts", "err", err)
		return
	}
	m.stats.lastSent = total
}

// since is the counts of total less those of base; the gauges (workers
// ready and wanted) are total's.
func since(total, base protocol.MasterStatsMsg) protocol.MasterStatsMsg {
	sub := func(a, b uint64) uint64 { return a - min(a, b) }
	out := total
	out.Rollbacks = sub(total.Rollbacks, base.Rollbacks)
	out.Reloads = map[string]uint64{}
	for k, v := range total.Reloads {
		out.Reloads[k] = sub(v, base.Reloads[k])
	}
	out.Slots = map[int]protocol.SlotStatsMsg{}
	for slot, v := range total.Slots {
		b := base.Slots[slot]
		out.Slots[slot] = protocol.SlotStatsMsg{
			Restarts: sub(v.Restarts, b.Restarts), HangKills: sub(v.HangKills, b.HangKills), Recycles: sub(v.Recycles, b.Recycles),
		}
	}
	return out
}
