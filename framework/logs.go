package framework

import (
	"encoding/json"
	"slices"
	"time"

	ctlsock "github.com/broodhq/brood/internal/control"
	"github.com/broodhq/brood/internal/wire"
)

// reopenTimeout bounds how long the master waits for every process to
// confirm that it reopened its log files. A process that has not confirmed
// by then may still be appending to a rotated file, so the agent leaves that
// file uncompressed (the next rotation finishes it).
const reopenTimeout = 10 * time.Second

// The master's side of reopening log files. A round starts on SIGUSR1 or
// when the agent has renamed files aside: the master reopens its own files,
// sends ctlReopenLogs to every live child (booting and draining ones
// included: they write too) and counts the ctlLogsReopened answers. A child
// that exits counts as done, since it writes nothing more. When all are in,
// or at reopenTimeout, the round ends; if the agent asked for it, the agent
// is told who did not answer.

type confirmation struct {
	pid int
	err string
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
		return ctlsock.Fail("log files: %v did not confirm within %s that they reopened them", o.missing, reopenTimeout)
	}
	return ctlsock.Response{OK: true, Message: "log files reopened by every process"}
}

// reopenLogs starts a round. by is the agent that asked, with its request
// id, or nil for SIGUSR1 and broodctl; done, if not nil, gets the outcome.
// It runs on the loop.
func (m *master) reopenLogs(by *child, reqID uint64, done chan<- reopenOutcome) {
	files := m.cfg.logs.files
	if files == nil {
		m.log.Info("no log files to reopen: they are written only with WithLogDir or $BROOD_LOG_DIR")
		if done != nil {
			done <- reopenOutcome{noFiles: true}
		}
		return
	}
	var failed []string // processes that could not reopen: they write to the old files
	if err := files.reopen(); err != nil {
		m.log.Error("reopen log files", "err", err)
		failed = append(failed, "master")
	}
	// The loop starts rounds; the readers' confirmations reach them
	// through onLogsControl.
	id, confirms, endRound := m.agentOps.rounds.add(len(m.live))

	pending := map[int]*child{}
	for c := range m.live {
		if c.exited || c.conn == nil {
			continue
		}
		if err := c.conn.SendFrame(control(ctlReopenLogs, reopenMsg{ID: id})); err != nil {
			continue // its channel is gone: it is exiting
		}
		pending[c.pid] = c
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		missing, failedChildren := m.awaitReopen(confirms, pending)
		endRound()
		failed := append(failed, failedChildren...)
		switch {
		case len(missing) == 0 && len(failed) == 0:
			m.log.Info("log files reopened by every process", "reason", reopenReason(by))
		case len(failed) == 0:
			m.log.Warn("log files: some processes did not confirm they reopened", "missing", missing, "timeout", reopenTimeout.String())
		default:
			m.log.Warn("log files: some processes could not reopen them and still write to the old files; see their errors above",
				"failed", failed, "missing", missing, "reason", reopenReason(by))
		}
		if done != nil {
			done <- reopenOutcome{missing: missing, failed: failed}
		}
		if by != nil {
			// Whoever still writes to the renamed file keeps it from
			// being compressed, whatever the reason.
			_ = by.conn.SendFrame(control(ctlLogsReopened, reopenedMsg{ID: reqID, Missing: append(missing, failed...)}))
		}
	}()
}

func reopenReason(by *child) string {
	if by == nil {
		return "SIGUSR1"
	}
	return "rotation"
}

// awaitReopen waits for the pending children to confirm or exit, and
// returns the names of those that did neither in time, and of those that
// answered that they could not reopen. It reads only the
// children's immutable fields and their connections, which are safe to use
// off the loop.
func (m *master) awaitReopen(confirms <-chan confirmation, pending map[int]*child) (missing, failed []string) {
	deadline := time.NewTimer(reopenTimeout)
	defer deadline.Stop()
	// Exits are noticed by polling the channels: a child's connection is
	// closed once the master has reaped it.
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for len(pending) > 0 {
		select {
		case c := <-confirms:
			if ch := pending[c.pid]; ch != nil && c.err != "" {
				ch.log.Error("could not reopen its log files; it keeps writing to the old ones", "err", c.err)
				failed = append(failed, ch.name())
			}
			delete(pending, c.pid)
		case <-poll.C:
			for pid, c := range pending {
				select {
				case <-c.conn.Done():
					delete(pending, pid)
				default:
				}
			}
		case <-deadline.C:
			var names []string
			for _, c := range pending {
				names = append(names, c.name())
			}
			slices.Sort(names)
			slices.Sort(failed)
			return names, failed
		case <-m.quit:
			return nil, failed
		}
	}
	slices.Sort(failed)
	return nil, failed
}

// onLogsControl handles the log file control frames a child sends; it runs
// on the loop.
func (m *master) onLogsControl(ch *child, f wire.Frame) {
	var msg reopenedMsg // reopenMsg's fields are a subset
	if err := json.Unmarshal(f.Data, &msg); err != nil {
		ch.log.Warn("malformed control frame", "action", f.Action, "err", err)
		return
	}
	switch f.Action {
	case ctlReopenLogs:
		m.reopenLogs(ch, msg.ID, nil)
	case ctlLogsReopened:
		if confirms := m.agentOps.rounds.get(msg.ID); confirms != nil {
			select {
			case confirms <- confirmation{pid: ch.pid, err: msg.Error}:
			default: // not one of the round's children (started after it)
			}
		}
	}
}
