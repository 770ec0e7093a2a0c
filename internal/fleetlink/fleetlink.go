package fleetlink

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// ActBroadcast is the action of the message a process's BroadcastFleet
// sends to its own agent, which publishes it to the fleet. "brood." actions
// are brood's own.
const ActBroadcast = "brood.fleet.broadcast"

// Envelope is ActBroadcast's data.
type Envelope struct {
	Action string          `json:"action"`
	Data   json.RawMessage `json:"data,omitempty"`
}

// EnvRedis names the fleet's Redis URL in the environment.
const EnvRedis = "BROOD_FLEET_REDIS"

// Job is what the fleet needs to know of a OncePerFleet job.
type Job struct {
	Name  string
	Every time.Duration // the interval of an Every job; 0 for a cron job
}

// Fleet is one host's membership in a fleet, held by its agent.
type Fleet interface {
	// Run runs job under the fleet's lease, at most once per tick across
	// the fleet: it returns ran=false without calling job when this host
	// does not hold the lease or another host already claimed the tick.
	// job's context carries the fencing epoch (Epoch) and ends when the
	// lease can no longer be trusted.
	Run(ctx context.Context, j Job, job func(ctx context.Context) error) (ran bool, err error)
	// Broadcast publishes a message to every host of the fleet, this one
	// included; it queues while Redis is unreachable (bounded).
	Broadcast(e Envelope) error
	// Handover gives the lease up for good (if held) once the jobs under
	// it have ended, so that another host takes it at once: a graceful
	// stop begins with it.
	Handover(ctx context.Context) error
	// Close hands the lease over (if not done yet) and stops talking to
	// Redis.
	Close(ctx context.Context) error
}

// Config is what an agent opens its fleet with.
type Config struct {
	URL     string
	App     string // WithName's: fleets of different applications are apart
	Log     *slog.Logger
	Deliver func(e Envelope) // delivers a fleet message on this host
	Status  func() Status    // this host's status, published with a TTL
}

// Status is one host's published status.
type Status struct {
	ID         string    `json:"id"` // unique per agent incarnation
	Host       string    `json:"host"`
	Addr       string    `json:"addr"`
	PID        int       `json:"pid"` // the master's
	Generation int       `json:"generation"`
	Workers    int       `json:"workers"`
	Started    time.Time `json:"started"`
	Uptime     string    `json:"uptime"`
	Leader     bool      `json:"leader"`
	Epoch      int64     `json:"epoch,omitempty"`
}

// Opener opens a fleet; package fleet registers it.
type Opener func(ctx context.Context, c Config) (Fleet, error)

var (
	mu     sync.Mutex
	opener Opener
)

// ErrNotLinked is returned by Open when no fleet implementation is linked.
var ErrNotLinked = errors.New(`fleet: no fleet support linked: add import _ "github.com/broodhq/brood/fleet" to the program`)

// Register installs the opener.
func Register(o Opener) { mu.Lock(); opener = o; mu.Unlock() }

// Linked reports whether an opener is registered.
func Linked() bool { mu.Lock(); defer mu.Unlock(); return opener != nil }

// Open opens a fleet with the registered opener.
func Open(ctx context.Context, c Config) (Fleet, error) {
	mu.Lock()
	o := opener
	mu.Unlock()
	if o == nil {
		return nil, ErrNotLinked
	}
	return o(ctx, c)
}

type epochKey struct{}

// WithEpoch returns ctx carrying a lease's fencing epoch.
func WithEpoch(ctx context.Context, epoch int64) context.Context {
	return context.WithValue(ctx, epochKey{}, epoch)
}

// Epoch returns the fencing epoch in ctx, 0 if none.
func Epoch(ctx context.Context) int64 {
	e, _ := ctx.Value(epochKey{}).(int64)
	return e
}
