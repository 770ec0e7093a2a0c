package framework

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/broodhq/brood/internal/proc"
)

// heartbeatMsg is what a worker reports every heartbeat. Progress counts
// responses written and requests completed: a worker whose in-flight
// requests make no progress for the hang timeout is hung, however busy its
// other goroutines are.
type heartbeatMsg struct {
	Requests uint64 `json:"requests"`
	InFlight int64  `json:"in_flight"`
	Progress uint64 `json:"progress"`
}

type recycleMsg struct {
	Requests uint64 `json:"requests"`
}

func (m *master) onHeartbeat(ch *child, data []byte) {
	var hb heartbeatMsg
	if err := json.Unmarshal(data, &hb); err != nil {
		ch.log.Warn("bad heartbeat", "err", err)
		return
	}
	ch.requests = hb.Requests
	if hb.InFlight == 0 || hb.Progress != ch.progressSeq {
		ch.lastProgress = time.Now()
	}
	ch.progressSeq = hb.Progress
}

func (m *master) onRecycle(ch *child, data []byte) {
	var msg recycleMsg
	_ = json.Unmarshal(data, &msg)
	if ch.recycling || m.phase != phaseRunning || m.slots[ch.slot].cur != ch {
		return
	}
	ch.recycling = true
	m.replace(ch.slot, fmt.Sprintf("served %d requests (max requests)", msg.Requests), 0, nil)
}

// housekeep replaces hung workers and workers over the memory limit. It
// runs on the loop every housekeepingEvery.
func (m *master) housekeep(now time.Time) {
	if m.phase != phaseRunning {
		return
	}
	for _, slot := range m.workerSlots() {
		st := m.slots[slot]
		ch := st.cur
		if ch == nil || !ch.ready || ch.exited || ch.recycling || st.next != nil {
			continue
		}
		if t := m.cfg.ops.hangTimeout; t > 0 && now.Sub(ch.lastProgress) > t {
			ch.recycling, ch.hung = true, true
			ch.log.Error("hung: no progress on its requests; replacing it", "silent_for", now.Sub(ch.lastProgress).Round(time.Millisecond).String(), "hang_timeout", t.String())
			// Stop it accepting now rather than once its successor is
			// ready: whatever it accepts meanwhile would hang with it, while
			// connections left in the socket's queue wait for the successor.
			// Its requests will not finish: a short drain, then KILL.
			drain := min(m.cfg.shutdownTimeout, hangDrain)
			m.stopChild(ch, drain, drain+hangKillGrace)
			m.replace(slot, "hung", drain, nil)
			continue
		}
		if m.cfg.ops.maxRSS > 0 {
			if rss, err := proc.RSS(ch.pid); err == nil && rss > m.cfg.ops.maxRSS {
				ch.recycling = true
				m.replace(slot, fmt.Sprintf("resident memory %d bytes over the limit of %d (WithMaxRSS)", rss, m.cfg.ops.maxRSS), 0, nil)
			}
		}
	}
}

// A hung worker gets hangDrain to finish what it can, then SIGKILL
// hangKillGrace later if it did not exit.
const (
	hangDrain     = 5 * time.Second
	hangKillGrace = 2 * time.Second
)
