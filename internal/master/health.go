package master

import (
	"fmt"
	"time"

	"github.com/broodhq/brood/internal/msglink"
	"github.com/broodhq/brood/internal/protocol"
	"github.com/broodhq/brood/internal/wire"
)

func (m *master) onHeartbeat(ch *child, hb protocol.HeartbeatMsg) {
	ch.beats = true
	ch.requests, ch.inFlight = hb.Requests, hb.InFlight
	if hb.InFlight == 0 || hb.Progress != ch.progressSeq {
		ch.lastProgress = m.clock.Now()
	}
	ch.progressSeq = hb.Progress
	ch.conns, ch.accepted = hb.Conns, hb.Accepted
	if m.cfg.Shared && ch.slot != agentSlot { // the agent heartbeats too, and serves no socket
		m.sendShare(ch)
	}
}

// onRecycle replaces a worker that served its maximum number of requests,
// unless a replacement is already on the way; a worker whose replacement
// cannot start keeps serving and asks again.
func (m *master) onRecycle(ch *child, msg protocol.RecycleMsg) {
	st := m.slots[ch.slot]
	if m.phase != phaseRunning || st.cur != ch || st.next != nil || ch.state != childReady {
		return
	}
	if err := m.replace(ch.slot, fmt.Sprintf("served %d requests (max requests)", msg.Requests), 0, nil); err != nil {
		ch.log.Error("could not start a replacement; it keeps serving", "err", err)
		return
	}
	st.recycles++
}

// housekeep replaces hung workers and workers over the memory limit. It
// runs on the loop every Config.Housekeeping.
func (m *master) housekeep(now time.Time) {
	if m.phase != phaseRunning {
		return
	}
	m.agentHung(now)
	for _, slot := range m.workerSlots() {
		st := m.slots[slot]
		ch := st.cur
		if ch == nil || ch.state != childReady || st.next != nil {
			continue
		}
		if t := m.cfg.HangTimeout; t > 0 && now.Sub(ch.lastProgress) > t {
			ch.hung = true
			st.hangKills++
			ch.log.Error("hung: no progress on its requests; replacing it", "silent_for", now.Sub(ch.lastProgress).Round(time.Millisecond).String(), "hang_timeout", t.String())
			// Stop it accepting now rather than once its successor is
			// ready: whatever it accepts meanwhile would hang with it, while
			// connections left in the socket's queue wait for the successor.
			// Its requests will not finish: a short drain, then KILL.
			drain := min(m.cfg.ShutdownTimeout, hangDrain)
			m.stopChild(ch, drain, drain+hangKillGrace)
			if err := m.replace(slot, "hung", drain, nil); err != nil {
				// It is stopping: its exit hands the slot to the
				// restart policy.
				ch.log.Error("could not start a replacement", "err", err)
			}
			continue
		}
		if m.cfg.MaxRSS > 0 {
			if rss, err := m.rss(ch.pid); err == nil && rss > m.cfg.MaxRSS {
				if err := m.replace(slot, fmt.Sprintf("resident memory %d bytes over the limit of %d (WithMaxRSS)", rss, m.cfg.MaxRSS), 0, nil); err != nil {
					ch.log.Error("could not start a replacement; it keeps serving", "err", err)
				} else {
					st.recycles++
				}
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

// agentHung kills an agent whose messenger made no progress for the hang
// timeout while messages waited for its dispatcher (its heartbeats say), so
// that a deadlocked agent does not hold the cluster's calls. A long call is
// not a hang: calls run in goroutines of their own; an On function that
// runs long on purpose says it progresses (messenger.Messenger.Progress).
//
// First the agent is told (msglink.CtlHung): its reader is alive, only the
// dispatcher is stuck, and the calls queued behind the stuck On function
// never started; it answers each with msglink.CodeHandOver, and their
// callers hold them for the next agent. It is killed once it confirms, or
// after msglink.HungGrace. Then the workers fail the calls it did start
// with ErrTargetGone (they may have run), keep the messages it did not
// acknowledge, and hand them and the calls it handed back to the next
// agent, which the restart policy starts as for a crash.
func (m *master) agentHung(now time.Time) {
	st := m.slots[agentSlot]
	t := m.cfg.HangTimeout
	if t <= 0 || st == nil || st.state != slotActive || st.next != nil {
		return
	}
	ch := st.cur
	if ch == nil || ch.state != childReady || !ch.beats || ch.hung || now.Sub(ch.lastProgress) <= t {
		return
	}
	ch.hung = true
	if m.directAgent == ch {
		m.directAgent = nil // workers starting from now on wait for the next agent
	}
	ch.log.Error("agent hung: its message handlers made no progress while messages waited; killing it, the next agent gets what was held",
		"silent_for", now.Sub(ch.lastProgress).Round(time.Millisecond).String(), "hang_timeout", t.String())
	if err := ch.conn.SendFrame(protocol.Control(msglink.CtlHung, nil)); err != nil {
		m.killHung(ch, "")
		return
	}
	m.clock.AfterFunc(msglink.HungGrace, func() {
		m.post(event{kind: evRequest, fn: func() { m.killHung(ch, "it did not hand back its queued calls in time") }})
	})
}

// onHungAgent is the hung agent's confirmation that it answered the calls
// it had not started (msglink.CtlHung): it is killed now.
func (m *master) onHungAgent(ch *child, f wire.Frame) {
	if !ch.hung || ch.slot != agentSlot {
		return
	}
	var msg msglink.Hung
	if m.decode(ch, f, &msg) {
		ch.log.Info("the hung agent handed back the calls it had not started", "calls", msg.Calls)
	}
	m.killHung(ch, "")
}

// killHung kills the hung agent ch, unless it has exited already.
func (m *master) killHung(ch *child, why string) {
	if ch.exited() || ch.hungKilled {
		return
	}
	ch.hungKilled = true
	if why != "" {
		ch.log.Warn("killing the hung agent: " + why)
	}
	if err := ch.proc.Kill(); err != nil {
		ch.log.Warn("kill the hung agent", "err", err)
	}
}
