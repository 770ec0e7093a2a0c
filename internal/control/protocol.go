package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/broodhq/brood/internal/profile"
)

// The commands a master answers.
const (
	CmdStatus     = "status"      // report every process
	CmdReload     = "reload"      // rolling reload, as SIGHUP
	CmdStop       = "stop"        // graceful stop, as SIGTERM
	CmdScale      = "scale"       // set the desired number of workers to N
	CmdReopenLogs = "reopen-logs" // reopen log files, as SIGUSR1
	CmdPprof      = "pprof"       // a profile of one process (Target, Slot, Profile, Seconds)
)

// Commands lists every command in the order broodctl's usage shows them.
var Commands = []string{CmdStatus, CmdReload, CmdStop, CmdScale, CmdReopenLogs, CmdPprof}

// MaxProfileSeconds bounds Request.Seconds: the server gives a handler
// 30 s in all.
const MaxProfileSeconds = 20

// The processes pprof takes a profile of (Request.Target).
const (
	TargetMaster = "master"
	TargetAgent  = "agent"
	TargetWorker = "worker" // with Request.Slot
)

// Size limits. A request is a few dozen bytes, so anything near the limit is
// not a brood client; a status with the agent's job table can be large, but
// not unbounded.
const (
	MaxRequestSize  = 64 << 10
	MaxResponseSize = 16 << 20
)

// EnvSocket names the environment variable that overrides the default socket
// path, for the master and for broodctl alike, so one export reaches both.
const EnvSocket = "BROOD_CONTROL_SOCKET"

// Request is the one line a client sends.
type Request struct {
	Cmd string `json:"cmd"`
	N   int    `json:"n,omitempty"` // for scale: the desired number of workers
	// DeadlineMS, in Unix milliseconds, is when the client stops waiting
	// for the answer. A request read after it is refused unheard, and the
	// handler's context ends then: a client that gave up must not see its
	// command carried out later (a master that was stopped, then continued).
	DeadlineMS int64 `json:"deadline_ms,omitempty"`

	// For pprof: whose profile (TargetMaster, TargetAgent, TargetWorker
	// with Slot), which one (cpu, heap, allocs, goroutine, mutex, block,
	// threadcreate, trace) and, for cpu, trace, mutex and block, over how
	// many seconds (0: 5).
	Target  string `json:"target,omitempty"`
	Slot    int    `json:"slot,omitempty"`
	Profile string `json:"profile,omitempty"`
	Seconds int    `json:"seconds,omitempty"`
}

// Deadline is DeadlineMS as a time, or the zero time when there is none.
func (r Request) Deadline() time.Time {
	if r.DeadlineMS == 0 {
		return time.Time{}
	}
	return time.UnixMilli(r.DeadlineMS)
}

// Validate reports whether the server will hand r to its handler. The range
// of N beyond "not negative" is the handler's to check: only the master knows
// its limits.
func (r Request) Validate() error {
	switch r.Cmd {
	case "":
		return errors.New(`missing "cmd"; want one of ` + strings.Join(Commands, ", "))
	case CmdScale:
		if r.N < 0 {
			return fmt.Errorf("scale: n is %d; want a number of workers, at least 0", r.N)
		}
		return nil
	case CmdPprof:
		switch {
		case r.Target != TargetMaster && r.Target != TargetAgent && r.Target != TargetWorker:
			return fmt.Errorf("pprof: target %q; want master, agent or worker", r.Target)
		case r.Target == TargetWorker && r.Slot < 1:
			return fmt.Errorf("pprof: worker slot %d; want a slot from broodctl status, 1 or more", r.Slot)
		case r.Seconds < 0 || r.Seconds > MaxProfileSeconds:
			return fmt.Errorf("pprof: %d seconds; want 0 to %d", r.Seconds, MaxProfileSeconds)
		}
		return profile.Check(r.Profile)
	case CmdStatus, CmdReload, CmdStop, CmdReopenLogs:
		return nil
	}
	return fmt.Errorf("unknown command %q; want one of %s", r.Cmd, strings.Join(Commands, ", "))
}

// Process is one row of the status table.
type Process struct {
	Role       string    `json:"role"` // master, agent, worker
	Slot       int       `json:"slot,omitempty"`
	PID        int       `json:"pid"`
	State      string    `json:"state"` // starting, ready, draining, stopping, ...
	Started    time.Time `json:"started"`
	Restarts   int       `json:"restarts"`
	Requests   uint64    `json:"requests"`
	RSS        int64     `json:"rss_bytes"` // 0: unknown
	Generation int       `json:"generation"`
	// InFlight is the requests a worker is serving, from its last heartbeat.
	InFlight int64 `json:"in_flight"`
	// Accepted is the connections a worker accepted since it started,
	// from its last heartbeat: the per-slot balance of connections.
	Accepted uint64 `json:"accepted"`
	// Queued is the connections waiting in the accept queues of a worker's
	// sockets (Linux; 0 elsewhere): a worker that falls behind shows here
	// first.
	Queued int `json:"queued"`
	// LastReason says why the slot's process was last restarted or
	// replaced: an exit status, "reload", "hung", "max requests", ...
	LastReason string `json:"last_reason,omitempty"`
}

// Status is the master's answer to "status".
type Status struct {
	App        string    `json:"app"`
	Addr       string    `json:"addr"`
	Started    time.Time `json:"started"`
	Generation int       `json:"generation"`
	Workers    int       `json:"workers"` // desired
	Ready      int       `json:"ready"`   // workers ready to serve
	// Operation is the reload or scale in progress, if any: "reload 2/4"
	// (the second of four processes being replaced), "rollback 1/4",
	// "scale 4→2".
	Operation string          `json:"operation,omitempty"`
	Processes []Process       `json:"processes"`
	Jobs      json.RawMessage `json:"jobs,omitempty"` // the agent's job table
}

// Response is the one line the server sends back.
type Response struct {
	OK      bool    `json:"ok"`
	Error   string  `json:"error,omitempty"`
	Status  *Status `json:"status,omitempty"`
	Message string  `json:"message,omitempty"` // e.g. "reload started"
	Data    []byte  `json:"data,omitempty"`    // pprof: the profile
}

// Err turns a refusal into an error (nil when r.OK), for callers that only
// want to know whether the command was accepted.
func (r Response) Err() error {
	if r.OK {
		return nil
	}
	if r.Error == "" {
		return errors.New("master refused the command without saying why")
	}
	return errors.New(r.Error)
}

// Fail is a refusal, for handlers: return control.Fail("scale: at most %d workers", max).
func Fail(format string, args ...any) Response {
	return Response{Error: fmt.Sprintf(format, args...)}
}
