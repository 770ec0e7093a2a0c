package agentproc

import (
	"log/slog"
	"sync"

	"github.com/broodhq/brood/internal/child"
	"github.com/broodhq/brood/internal/protocol"
	"github.com/broodhq/brood/internal/wire"
	"github.com/broodhq/brood/metrics"
)

// masterStats keeps the master's latest counts (protocol.MasterStats) for
// the cluster's /metrics: the master has no registry of its own in the
// aggregation, so the agent shows them.
type masterStats struct {
	mu   sync.Mutex
	last metrics.MasterStats
	ok   bool
}

func (s *masterStats) get() (metrics.MasterStats, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, s.ok
}

// serveMasterStats registers the master's counts in the agent's metrics and
// keeps them up to date from the master's frames.
func serveMasterStats(link *child.Link, log *slog.Logger) {
	s := &masterStats{}
	if err := metrics.RegisterMaster(s.get); err != nil {
		log.Warn("the master's metrics left out", "err", err)
		return
	}
	link.Handle(protocol.MasterStats, func(f wire.Frame) {
		var msg protocol.MasterStatsMsg
		if err := protocol.Decode(f, &msg); err != nil {
			log.Warn("master-stats from the master", "err", err)
			return
		}
		st := metrics.MasterStats{
			WorkersReady: msg.WorkersReady, WorkersWanted: msg.WorkersWanted,
			Reloads: msg.Reloads, Rollbacks: msg.Rollbacks, Slots: map[int]metrics.SlotStats{},
		}
		for slot, v := range msg.Slots {
			st.Slots[slot] = metrics.SlotStats{Restarts: v.Restarts, HangKills: v.HangKills, Recycles: v.Recycles}
		}
		s.mu.Lock()
		s.last, s.ok = st, true
		s.mu.Unlock()
	})
}
