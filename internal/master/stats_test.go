package master

import (
	"testing"

	"github.com/broodhq/brood/internal/protocol"
)

// An agent is sent the counts less those its predecessors were sent: the
// cluster's metrics add a replaced agent's last counts to its successor's.
func TestStatsSince(t *testing.T) {
	base := protocol.MasterStatsMsg{
		WorkersReady: 3, Rollbacks: 1, Reloads: map[string]uint64{"ok": 2},
		Slots: map[int]protocol.SlotStatsMsg{1: {Restarts: 4, HangKills: 1}},
	}
	total := protocol.MasterStatsMsg{
		WorkersReady: 2, WorkersWanted: 3, Rollbacks: 1, Reloads: map[string]uint64{"ok": 3, "failed": 1},
		Slots: map[int]protocol.SlotStatsMsg{1: {Restarts: 5, HangKills: 1, Recycles: 2}, 2: {Restarts: 1}},
	}
	got := since(total, base)
	if got.WorkersReady != 2 || got.WorkersWanted != 3 {
		t.Errorf("gauges: got ready %d wanted %d, want 2 and 3 (not subtracted)", got.WorkersReady, got.WorkersWanted)
	}
	if got.Rollbacks != 0 || got.Reloads["ok"] != 1 || got.Reloads["failed"] != 1 {
		t.Errorf("reloads: got rollbacks %d, %v; want 0, ok 1, failed 1", got.Rollbacks, got.Reloads)
	}
	if s := got.Slots[1]; s != (protocol.SlotStatsMsg{Restarts: 1, Recycles: 2}) {
		t.Errorf("slot 1: got %+v, want 1 restart and 2 recycles", s)
	}
	if s := got.Slots[2]; s.Restarts != 1 {
		t.Errorf("slot 2: got %+v, want 1 restart", s)
	}
	// A slot whose counts start again (scaled away, then back) never
	// goes below zero.
	if s := since(protocol.MasterStatsMsg{Slots: map[int]protocol.SlotStatsMsg{1: {Restarts: 1}}}, base).Slots[1]; s.Restarts != 0 {
		t.Errorf("a slot below its base: got %d restarts, want 0", s.Restarts)
	}
}
