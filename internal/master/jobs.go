package master

import (
	"context"
	"errors"
	"fmt"

	"github.com/broodhq/brood/internal/protocol"
	"github.com/broodhq/brood/internal/wire"
	"github.com/broodhq/brood/schedule"
)

// agentOps is the master's state for questions about the agent's jobs,
// which the control socket asks off the loop. It is safe to use off the
// loop.
type agentOps struct {
	queries protocol.Waiters[[]schedule.JobStatus]
}

// onAgentOps handles the control frames of log reopening and job status; it
// runs on the loop.
func (m *master) onAgentOps(ch *child, f wire.Frame) {
	switch f.Action {
	case protocol.ReopenLogs, protocol.LogsReopened:
		m.onLogsControl(ch, f)
	case protocol.Jobs:
		var msg protocol.JobsMsg
		if ch.slot != agentSlot || !m.decode(ch, f, &msg) {
			return
		}
		if reply := m.agentOps.queries.Get(msg.ID); reply != nil {
			select {
			case reply <- msg.Jobs:
			default: // answered twice
			}
		}
	}
}

// errNoAgent is returned by agentJobs when no agent is running to answer.
var errNoAgent = errors.New("no agent is running")

// agentJobs asks the agent for the status of its jobs (agent.Every,
// agent.Cron and the workers' schedules it drives). It may be called from
// any goroutine, the control socket's included, but not from the loop,
// which must stay free to deliver the answer.
func (m *master) agentJobs(ctx context.Context) ([]schedule.JobStatus, error) {
	t := m.router.table.Load()
	if t == nil || t.agent == nil {
		return nil, errNoAgent
	}
	id, reply, remove := m.agentOps.queries.Add(1)
	defer remove()
	if err := t.agent.SendFrame(protocol.Control(protocol.Jobs, protocol.JobsMsg{ID: id})); err != nil {
		return nil, fmt.Errorf("ask the agent for its jobs: %w", err)
	}
	select {
	case jobs := <-reply:
		return jobs, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("ask the agent for its jobs: %w", context.Cause(ctx))
	}
}
