package framework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/broodhq/brood/internal/wire"
	"github.com/broodhq/brood/schedule"
)

// agentOps is the master's state for what it does with the agent besides
// supervising it: rounds of log reopening (logs.go) and questions about the
// agent's jobs. It is safe to use off the loop.
type agentOps struct {
	rounds logRounds

	mu      sync.Mutex
	nextQ   uint64
	queries map[uint64]chan []schedule.JobStatus
}

// onAgentOps handles the control frames of log reopening and job status; it
// runs on the loop.
func (m *master) onAgentOps(ch *child, f wire.Frame) {
	switch f.Action {
	case ctlReopenLogs, ctlLogsReopened:
		m.onLogsControl(ch, f)
	case ctlJobs:
		var msg jobsMsg
		if json.Unmarshal(f.Data, &msg) != nil || ch.slot != agentSlot {
			return
		}
		m.agentOps.mu.Lock()
		reply := m.agentOps.queries[msg.ID]
		delete(m.agentOps.queries, msg.ID)
		m.agentOps.mu.Unlock()
		if reply != nil {
			reply <- msg.Jobs
		}
	}
}

// ErrNoAgent is returned by agentJobs when no agent is running to answer.
var ErrNoAgent = errors.New("no agent is running")

// agentJobs asks the agent for the status of its jobs (agent.Every,
// agent.Cron and the workers' schedules it drives). It may be called from
// any goroutine, the control socket's included, but not from the loop,
// which must stay free to deliver the answer.
func (m *master) agentJobs(ctx context.Context) ([]schedule.JobStatus, error) {
	t := m.router.table.Load()
	if t == nil || t.agent == nil {
		return nil, ErrNoAgent
	}
	reply := make(chan []schedule.JobStatus, 1)
	m.agentOps.mu.Lock()
	m.agentOps.nextQ++
	id := m.agentOps.nextQ
	if m.agentOps.queries == nil {
		m.agentOps.queries = map[uint64]chan []schedule.JobStatus{}
	}
	m.agentOps.queries[id] = reply
	m.agentOps.mu.Unlock()
	defer func() {
		m.agentOps.mu.Lock()
		delete(m.agentOps.queries, id)
		m.agentOps.mu.Unlock()
	}()
	if err := t.agent.SendFrame(control(ctlJobs, jobsMsg{ID: id})); err != nil {
		return nil, fmt.Errorf("ask the agent for its jobs: %w", err)
	}
	select {
	case jobs := <-reply:
		return jobs, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("ask the agent for its jobs: %w", context.Cause(ctx))
	}
}
