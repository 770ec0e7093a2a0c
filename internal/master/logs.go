package master

import (
	"slices"

	ctlsock "github.com/broodhq/brood/internal/control"
	"github.com/broodhq/brood/internal/protocol"
	"github.com/broodhq/brood/internal/wire"
)

// The master's side of reopening log files. A round starts on SIGUSR1 or
// when the agent has renamed files aside: the master reopens its own files,
// sends protocol.ReopenLogs to every live child (booting and draining ones
// included: they write too) and waits for their protocol.LogsReopened
// answers. The loop owns the round: an answer, the exit of a child the
// round waits for (it writes nothing more) and the round's timer, at
// protocol.ReopenTimeout, are events on the loop. When all are in, or at
// the timeout, the round ends; if the agent asked for it, the agent is told
// who did not reopen.

// reopenRound is one round of log reopening in progress.
type reopenRound struct {
	by      *child // the agent that asked, or nil for SIGUSR1 and broodctl
	reqID   uint64 // the agent's id for its request
	done    chan<- reopenOutcome
	pending map[*child]bool
	failed  []string // processes that could not reopen: they write to the old files
}

// reopenOutcome is how a round ended, for broodctl reopen-logs.
type reopenOutcome struct {
	noFiles         bool
	missing, failed []string
}

func (o reopenOutcome) response() ctlsock.Response {
	switch {
	case o.noFiles:
		return ctlsock.Response{OK: true, Message: "no log files to reopen: they are written only with WithLogDir or $BROOD_LOG_DIR"}
	case len(o.failed) > 0:
		return ctlsock.Fail("log files: %v could not reopen them and still write to the old files (see the master's log for why); did not answer: %v", o.failed, o.missing)
	case len(o.missing) > 0:
		return ctlsock.Fail("log files: %v did not confirm within %s that they reopened them", o.missing, protocol.ReopenTimeout)
	}
	return ctlsock.Response{OK: true, Message: "log files reopened by every process"}
}

// reopenLogs starts a round. by is the agent that asked, with its request
// id, or nil for SIGUSR1 and broodctl; done, if not nil, gets the outcome
// (it must have room for it). It runs on the loop.
func (m *master) reopenLogs(by *child, reqID uint64, done chan<- reopenOutcome) {
	if m.cfg.ReopenLogs == nil {
		m.log.Info("no log files to reopen: they are written only with WithLogDir or $BROOD_LOG_DIR")
		if done != nil {
			done <- reopenOutcome{noFiles: true}
		}
		return
	}
	r := &reopenRound{by: by, reqID: reqID, done: done, pending: map[*child]bool{}}
	if err := m.cfg.ReopenLogs(); err != nil {
		m.log.Error("reopen log files", "err", err)
		r.failed = append(r.failed, "master")
	}
	m.roundSeq++
	id := m.roundSeq
	for c := range m.live {
		if c.exited() || c.conn == nil {
			continue
		}
		if err := c.conn.SendFrame(protocol.Control(protocol.ReopenLogs, protocol.ReopenMsg{ID: id})); err != nil {
			continue // its channel is gone: it is exiting
		}
		r.pending[c] = true
	}
	if m.rounds == nil {
		m.rounds = map[uint64]*reopenRound{}
	}
	m.rounds[id] = r
	m.clock.AfterFunc(protocol.ReopenTimeout, func() {
		m.post(event{kind: evRequest, fn: func() { m.endRound(id) }})
	})
	m.roundProgress(id)
}

// roundConfirmed records a child's answer to round id.
func (m *master) roundConfirmed(id uint64, ch *child, errText string) {
	r := m.rounds[id]
	if r == nil || !r.pending[ch] {
		return // over, or not one of the round's children (started after it)
	}
	delete(r.pending, ch)
	if errText != "" {
		ch.log.Error("could not reopen its log files; it keeps writing to the old ones", "err", errText)
		r.failed = append(r.failed, ch.name())
	}
	m.roundProgress(id)
}

// roundsChildExited counts an exited child as done in every round.
func (m *master) roundsChildExited(ch *child) {
	for id, r := range m.rounds {
		if r.pending[ch] {
			delete(r.pending, ch)
			m.roundProgress(id)
		}
	}
}

// roundProgress ends round id once nobody is left to answer.
func (m *master) roundProgress(id uint64) {
	if r := m.rounds[id]; r != nil && len(r.pending) == 0 {
		m.endRound(id)
	}
}

// endRound ends round id: at its last answer, or at the timeout with the
// silent children named.
func (m *master) endRound(id uint64) {
	r := m.rounds[id]
	if r == nil {
		return
	}
	delete(m.rounds, id)
	var missing []string
	for c := range r.pending {
		missing = append(missing, c.name())
	}
	slices.Sort(missing)
	slices.Sort(r.failed)
	switch {
	case len(missing) == 0 && len(r.failed) == 0:
		m.log.Info("log files reopened by every process", "reason", reopenReason(r.by))
	case len(r.failed) == 0:
		m.log.Warn("log files: some processes did not confirm they reopened", "missing", missing, "timeout", protocol.ReopenTimeout.String())
	default:
		m.log.Warn("log files: some processes could not reopen them and still write to the old files; see their errors above",
			"failed", r.failed, "missing", missing, "reason", reopenReason(r.by))
	}
	if r.done != nil {
		r.done <- reopenOutcome{missing: missing, failed: r.failed}
	}
	if r.by != nil {
		// Whoever still writes to the renamed file keeps it from
		// being compressed, whatever the reason.
		_ = r.by.conn.SendFrame(protocol.Control(protocol.LogsReopened, protocol.ReopenedMsg{ID: r.reqID, Missing: append(missing, r.failed...)}))
	}
}

func reopenReason(by *child) string {
	if by == nil {
		return "SIGUSR1"
	}
	return "rotation"
}

// onLogsControl handles the log file control frames a child sends; it runs
// on the loop.
func (m *master) onLogsControl(ch *child, f wire.Frame) {
	var msg protocol.ReopenedMsg // protocol.ReopenMsg's fields are a subset
	if !m.decode(ch, f, &msg) {
		return
	}
	switch f.Action {
	case protocol.ReopenLogs:
		m.reopenLogs(ch, msg.ID, nil)
	case protocol.LogsReopened:
		m.roundConfirmed(msg.ID, ch, msg.Error)
	}
}
