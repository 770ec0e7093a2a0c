package framework

import (
	"encoding/json"
	"time"

	"github.com/broodhq/brood/internal/wire"
	"github.com/broodhq/brood/schedule"
)

// Environment of a child process, set by the master.
const (
	envRole   = "BROOD_ROLE"       // "agent" or "worker"; unset in the master
	envSlot   = "BROOD_SLOT"       // worker slot, from 1
	envMaster = "BROOD_MASTER_PID" // so a child can tell it was started by its master
	// envSockets lists the slot sockets a worker serves, its own first, as
	// inherited from fdSlot on; more than one after a scale-down.
	envSockets    = "BROOD_SOCKETS"
	envGeneration = "BROOD_GENERATION"
)

// Descriptors a child inherits (exec.Cmd.ExtraFiles start at 3).
const (
	fdChannel = 3 // the socketpair to the master
	fdSlot    = 4 // a worker's first slot socket; more follow
)

// Control actions between the master and a child.
const (
	ctlReady        = "ready"         // child → master: hooks ran, serving
	ctlBootFailed   = "boot-failed"   // child → master: why it cannot start
	ctlStop         = "stop"          // master → child: stop within the timeout
	ctlClusterReady = "cluster-ready" // master → child: every process is ready
	ctlHeartbeat    = "heartbeat"     // worker → master: requests and progress
	ctlRecycle      = "recycle"       // worker → master: max requests reached
	ctlDraining     = "draining"      // agent → master: stopping; send me nothing more
	ctlDrained      = "drained"       // master → agent: nothing more follows this
)

type stopMsg struct {
	TimeoutMS int64 `json:"timeout_ms"`
	// HandedOver says another worker takes over the child's sockets (a
	// reload, a scale-down, a replacement), so its idle keep-alive
	// connections are worth keeping for their clients' next request.
	HandedOver bool `json:"handed_over,omitempty"`
}

type bootFailedMsg struct {
	Error string `json:"error"`
}

// Control actions for log files (logs.go, childctl.go) and the agent's jobs
// (jobs.go).
const (
	// agent → master: have every process reopen its log files (reopenMsg);
	// master → child: reopen yours now (reopenMsg, the master's round id).
	ctlReopenLogs = "reopen-logs"
	// child → master: reopened (reopenedMsg, Error set if it failed);
	// master → agent: every process has, or Missing names who did not.
	ctlLogsReopened = "logs-reopened"
	// master → agent: report the jobs (jobsMsg); agent → master: jobsMsg
	// with Jobs filled in.
	ctlJobs = "jobs"
)

type reopenMsg struct {
	ID uint64 `json:"id"`
}

type reopenedMsg struct {
	ID      uint64   `json:"id"`
	Error   string   `json:"error,omitempty"`
	Missing []string `json:"missing,omitempty"`
}

type jobsMsg struct {
	ID   uint64               `json:"id"`
	Jobs []schedule.JobStatus `json:"jobs,omitempty"`
}

func control(action string, v any) *wire.Frame {
	f := &wire.Frame{Kind: wire.KindControl, Action: action}
	if v != nil {
		f.Data, _ = json.Marshal(v)
	}
	return f
}

func stopFrame(timeout time.Duration, handedOver bool) *wire.Frame {
	return control(ctlStop, stopMsg{TimeoutMS: timeout.Milliseconds(), HandedOver: handedOver})
}
