package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/broodhq/brood/internal/wire"
	"github.com/broodhq/brood/schedule"
)

// Environment of a child process, set by the master.
const (
	EnvRole   = "BROOD_ROLE"       // "agent" or "worker"; unset in the master
	EnvSlot   = "BROOD_SLOT"       // worker slot, from 1
	EnvMaster = "BROOD_MASTER_PID" // so a child can tell it was started by its master
	// EnvSockets lists the slot sockets a worker serves, its own first, as
	// inherited from FDSlot on; more than one after a scale-down.
	EnvSockets    = "BROOD_SOCKETS"
	EnvGeneration = "BROOD_GENERATION"
)

// Descriptors a child inherits (exec.Cmd.ExtraFiles start at 3).
const (
	FDChannel = 3 // the socketpair to the master
	FDSlot    = 4 // a worker's first slot socket; more follow
)

// Control actions between the master and a child.
const (
	Ready        = "ready"         // child → master: hooks ran, serving
	BootFailed   = "boot-failed"   // child → master: why it cannot start (BootFailedMsg)
	Stop         = "stop"          // master → child: stop within the timeout (StopMsg)
	ClusterReady = "cluster-ready" // master → child: every process is ready
	Heartbeat    = "heartbeat"     // worker → master: requests and progress (HeartbeatMsg)
	Recycle      = "recycle"       // worker → master: max requests reached (RecycleMsg)
	Draining     = "draining"      // agent → master: stopping; send me nothing more
	Drained      = "drained"       // master → agent: nothing more follows this
	// ClusterStopping: master → agent: the cluster began to stop; hand
	// over at once what another host can take (the fleet's lease).
	ClusterStopping = "cluster-stopping"

	// ReopenLogs: agent → master: have every process reopen its log files
	// (ReopenMsg); master → child: reopen yours now (ReopenMsg, the
	// master's round id).
	ReopenLogs = "reopen-logs"
	// LogsReopened: child → master: reopened (ReopenedMsg, Error set if it
	// failed); master → agent: every process has, or Missing names who did
	// not.
	LogsReopened = "logs-reopened"
	// Jobs: master → agent: report the jobs (JobsMsg); agent → master:
	// JobsMsg with Jobs filled in.
	Jobs = "jobs"
	// Procs: master → child: the number of workers changed; set
	// GOMAXPROCS to your new share of the CPUs (ProcsMsg).
	Procs = "procs"
	// Profile: master → child: take a profile (ProfileMsg: ID, Kind,
	// DurationMS); child → master: here it is (ProfileMsg: ID, Data or
	// Error). For broodctl pprof.
	Profile = "profile"
	// MasterStats: master → agent, every housekeeping tick: what the
	// master counts, for the cluster's /metrics (MasterStatsMsg).
	MasterStats = "master-stats"
	// Share: master → worker, balance shared: accept from the shared
	// socket while you hold fewer connections than this (ShareMsg).
	Share = "share"
)

// MasterStatsMsg is the data of MasterStats: counts since the master
// started.
type MasterStatsMsg struct {
	WorkersReady  int                  `json:"workers_ready"`
	WorkersWanted int                  `json:"workers_wanted"`
	Reloads       map[string]uint64    `json:"reloads,omitempty"` // by result: ok, rolled_back, failed, refused
	Rollbacks     uint64               `json:"rollbacks"`
	Slots         map[int]SlotStatsMsg `json:"slots,omitempty"` // by slot, 0 the agent
}

// SlotStatsMsg is one slot's counts in MasterStatsMsg.
type SlotStatsMsg struct {
	Restarts  uint64 `json:"restarts"`   // after an unexpected exit
	HangKills uint64 `json:"hang_kills"` // replaced as hung
	Recycles  uint64 `json:"recycles"`   // replaced after max requests or over max RSS
}

// ProfileMsg is the data of Profile, both ways.
type ProfileMsg struct {
	ID         uint64 `json:"id"`
	Kind       string `json:"kind,omitempty"`
	DurationMS int64  `json:"duration_ms,omitempty"`
	Data       []byte `json:"data,omitempty"`
	Error      string `json:"error,omitempty"`
}

// ShareMsg is the data of Share: the workers' fair share of the cluster's
// open connections, plus one so that a new connection always has a worker
// under its share.
type ShareMsg struct {
	Conns int64 `json:"conns"`
}

// SharedSocket is the id, in EnvSockets, of the socket every worker serves
// with balance shared (reuseport.SharedSlot).
const SharedSocket = "0"

// ProcsMsg is the data of Procs.
type ProcsMsg struct {
	N int `json:"n"`
}

// ReopenTimeout bounds how long the master waits for every process to
// confirm that it reopened its log files. A process that has not confirmed
// by then may still be appending to a rotated file, so the agent leaves that
// file uncompressed (the next rotation finishes it).
const ReopenTimeout = 10 * time.Second

// StopMsg is the data of Stop.
type StopMsg struct {
	TimeoutMS int64 `json:"timeout_ms"`
	// HandedOver says another worker takes over the child's sockets (a
	// reload, a scale-down, a replacement), so its idle keep-alive
	// connections are worth keeping for their clients' next request.
	HandedOver bool `json:"handed_over,omitempty"`
}

// BootFailedMsg is the data of BootFailed.
type BootFailedMsg struct {
	Error string `json:"error"`
}

// ReopenMsg is the data of ReopenLogs.
type ReopenMsg struct {
	ID uint64 `json:"id"`
}

// ReopenedMsg is the data of LogsReopened.
type ReopenedMsg struct {
	ID      uint64   `json:"id"`
	Error   string   `json:"error,omitempty"`
	Missing []string `json:"missing,omitempty"`
}

// JobsMsg is the data of Jobs.
type JobsMsg struct {
	ID   uint64               `json:"id"`
	Jobs []schedule.JobStatus `json:"jobs,omitempty"`
}

// HeartbeatMsg is what a worker reports every heartbeat. Progress counts
// responses written and requests completed: a worker whose in-flight
// requests make no progress for the hang timeout is hung, however busy its
// other goroutines are.
type HeartbeatMsg struct {
	Requests uint64 `json:"requests"`
	InFlight int64  `json:"in_flight"`
	Progress uint64 `json:"progress"`
	// Conns is the most connections the worker held open at once since
	// its last heartbeat: a snapshot would miss short-lived ones.
	Conns int64 `json:"conns"`
	// Accepted is the connections the worker accepted since it started:
	// how the kernel's balancing spread them shows here.
	Accepted uint64 `json:"accepted"`
}

// RecycleMsg is the data of Recycle.
type RecycleMsg struct {
	Requests uint64 `json:"requests"`
}

// Control returns the control frame for action with v, JSON-encoded, as its
// data (none when v is nil).
func Control(action string, v any) *wire.Frame {
	f := &wire.Frame{Kind: wire.KindControl, Action: action}
	if v != nil {
		f.Data, _ = json.Marshal(v)
	}
	return f
}

// StopFrame tells a child to stop within timeout; handedOver says whether
// another worker takes over what it leaves (StopMsg.HandedOver).
func StopFrame(timeout time.Duration, handedOver bool) *wire.Frame {
	return Control(Stop, StopMsg{TimeoutMS: timeout.Milliseconds(), HandedOver: handedOver})
}

// ErrMalformed is wrapped by Decode's errors.
var ErrMalformed = errors.New("malformed control frame")

// Decode is the one decoding policy for control data, on both sides: v is
// a fresh value of the action's message type; a frame with no data leaves
// it as it is (its zero value); data that is not v's JSON is an error
// naming the action and wrapping ErrMalformed, and the receiver logs it and
// drops the frame rather than act on a half-decoded message.
func Decode(f wire.Frame, v any) error {
	if len(f.Data) == 0 {
		return nil
	}
	if err := json.Unmarshal(f.Data, v); err != nil {
		return fmt.Errorf("%w %q: %w", ErrMalformed, f.Action, err)
	}
	return nil
}
