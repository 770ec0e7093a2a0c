package master

import (
	"slices"
	"time"

	"github.com/broodhq/brood/internal/protocol"
	"github.com/broodhq/brood/internal/wire"
)

// The master's side of reopening log files. A round starts on SIGUSR1 or
// when the agent has renamed files aside: the master reopens its own files,
// sends protocol.ReopenLogs to every live child (booting and draining ones
// included: they write too) and counts the protocol.LogsReopened answers. A child
// that exits counts as done, since it writes nothing more. When all are in,
// or at protocol.ReopenTimeout, the round ends; if the agent asked for it, the agent
// is told who did not answer.

type confirmation struct {
	pid int
	err string
}

// reopenLogs starts a round. by is the agent that asked, with its request
// id, or nil for SIGUSR1. It runs on the loop.
func (m *master) reopenLogs(by *child, reqID uint64) {
	if m.cfg.ReopenLogs == nil {
		m.log.Info("no log files to reopen: they are written only with WithLogDir or $BROOD_LOG_DIR")
		return
	}
	var failed []string // processes that could not reopen: they write to the old files
	if err := m.cfg.ReopenLogs(); err != nil {
		m.log.Error("reopen log files", "err", err)
		failed = append(failed, "master")
	}
	// The loop starts rounds; the readers' confirmations reach them
	// through onLogsControl.
	id, confirms, endRound := m.agentOps.rounds.Add(len(m.live))

	pending := map[int]*child{}
	for c := range m.live {
		if c.exited() || c.conn == nil {
			continue
		}
		if err := c.conn.SendFrame(protocol.Control(protocol.ReopenLogs, protocol.ReopenMsg{ID: id})); err != nil {
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
			m.log.Warn("log files: some processes did not confirm they reopened", "missing", missing, "timeout", protocol.ReopenTimeout.String())
		default:
			m.log.Warn("log files: some processes could not reopen them and still write to the old files; see their errors above",
				"failed", failed, "missing", missing, "reason", reopenReason(by))
		}
		if by != nil {
			// Whoever still writes to the renamed file keeps it from
			// being compressed, whatever the reason.
			_ = by.conn.SendFrame(protocol.Control(protocol.LogsReopened, protocol.ReopenedMsg{ID: reqID, Missing: append(missing, failed...)}))
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
	deadline := time.NewTimer(protocol.ReopenTimeout)
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
	var msg protocol.ReopenedMsg // protocol.ReopenMsg's fields are a subset
	if !m.decode(ch, f, &msg) {
		return
	}
	switch f.Action {
	case protocol.ReopenLogs:
		m.reopenLogs(ch, msg.ID)
	case protocol.LogsReopened:
		if confirms := m.agentOps.rounds.Get(msg.ID); confirms != nil {
			select {
			case confirms <- confirmation{pid: ch.pid, err: msg.Error}:
			default: // not one of the round's children (started after it)
			}
		}
	}
}
