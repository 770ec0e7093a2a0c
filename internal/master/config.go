package master

import (
	"log/slog"
	"time"
)

// Config is the master's runtime configuration, built once by framework.Run
// from the resolved options.
type Config struct {
	Log             *slog.Logger
	Addr            string // host:port the workers serve
	Workers         int
	MaxWorkers      int // the most a scale may ask for (framework.MaxWorkers)
	ShutdownTimeout time.Duration
	StartTimeout    time.Duration
	Name            string // processes' titles: "NAME: worker 2"
	MaxMessage      int    // bytes of one frame's data
	RestartMin      time.Duration
	HangTimeout     time.Duration // 0: no hang detection
	MaxRSS          int64         // bytes; 0: no limit
	Housekeeping    time.Duration // how often hangs and memory are checked
	ControlSocket   string        // "": the default path; "-": none
	PIDFile         string        // "": none
	Scheme          string        // http or https, for the ready line
	CPUs            int           // shared among the workers; 0: the CPUs this process may use
	// ShareCPUs sets each child's GOMAXPROCS to its share of the CPUs, and
	// updates it when the number of workers changes; off when the user set
	// GOMAXPROCS, which children then inherit.
	ShareCPUs bool
	// Sticky attaches the sticky reuseport program to the slots' sockets
	// (WithBalance("sticky")); the group keeps it up to date through every
	// later Add and Remove.
	Sticky bool
	// Shared gives every worker one more socket, shared by all, which
	// takes every new connection (WithBalance("shared")); the master tells
	// each worker its fair share of connections on every heartbeat
	// (share.go).
	Shared bool

	// ReopenLogs reopens the master's own log files; nil when it writes
	// none.
	ReopenLogs func() error
	// Describe is the effective configuration, as slog attributes, for the
	// "configuration" line.
	Describe []any
}
