package master

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/broodhq/brood/internal/proc"
	"github.com/broodhq/brood/internal/wire"
	"github.com/broodhq/brood/reuseport"
	"github.com/broodhq/brood/schedule"
)

// ErrStart is wrapped by the error Run returns when the cluster could not
// start: a child failed before it was ready, or the address was taken.
var ErrStart = errors.New("cluster failed to start")

// ErrCrashLoop is wrapped by the error Run returns when every worker slot
// crashed too often to be restarted, leaving nothing to serve.
var ErrCrashLoop = errors.New("every worker is in a crash loop")

// Restart policy: a child that dies is restarted after a backoff that
// doubles from Config.RestartMin (DefaultRestartMin) to restartMax and resets once the child has run
// for healthyAfter; crashLoopExits exits of one slot within crashLoopWindow
// stop restarting that slot.
const (
	DefaultRestartMin = 100 * time.Millisecond
	restartMax        = 15 * time.Second
	healthyAfter      = 30 * time.Second
	crashLoopExits    = 10
	crashLoopWindow   = 60 * time.Second
	killGrace         = 5 * time.Second // after the shutdown timeout, before SIGKILL
	fastStopGrace     = 3 * time.Second
)

type phase int

const (
	phaseStartingAgent phase = iota
	phaseStartingWorkers
	phaseRunning
	phaseStoppingWorkers
	phaseStoppingAgent
)

const agentSlot = 0

// child is one process the master started. Only the master's loop touches
// its fields.
type child struct {
	slot    int // agentSlot for the agent
	pid     int
	gen     *generation
	sockets []int   // the slot sockets a worker serves, its own first
	proc    Process // nil for a child whose start failed
	conn    *wire.Conn
	started time.Time
	readyAt time.Time // when it said it was ready; zero before
	state   childState
	bootErr string
	log     *slog.Logger

	readDone chan struct{} // closed when readLoop returns

	// from heartbeats
	requests     uint64
	inFlight     int64
	progressSeq  uint64
	lastProgress time.Time
	conns        int64  // the most open connections between two heartbeats
	accepted     uint64 // connections accepted since it started
	hung         bool   // replaced as hung: its idle connections are not kept (stopChild)
	hungKilled   bool   // the hung agent was sent SIGKILL (killHung)
	beats        bool   // it sends heartbeats: the hang detection may judge it
}

// exited reports whether the child has been reaped.
func (c *child) exited() bool { return c.state == childExited }

// routable reports whether messages may go to the child: it has been ready
// and has not exited (a draining child still answers).
func (c *child) routable() bool { return !c.readyAt.IsZero() && c.state != childExited }

func (c *child) name() string {
	if c.slot == agentSlot {
		return "agent"
	}
	return "worker " + strconv.Itoa(c.slot)
}

// slotState is the history of one slot across the children that filled it.
type slotState struct {
	state   slotStatus
	cur     *child
	next    *child // a successor starting while cur still serves
	sockets []int  // the sockets this slot's worker serves
	// waiter is the operation (ops.go) waiting for this slot's successor to
	// be ready, or for its agent to have exited in a swap; nil if none.
	waiter   chan<- result
	backoff  time.Duration
	exits    []time.Time
	restarts int
	// lastReason says why the slot's process was last restarted or
	// replaced, for status.
	lastReason string
	// for /metrics (stats.go)
	hangKills, recycles uint64
	drain               time.Duration // how long the replaced process gets to drain; 0: the shutdown timeout
}

// result answers an operation waiting on a slot.
type result struct {
	ok  bool
	why string // when not ok
}

// answer tells the operation waiting on st, if any, how its wait ended.
func (st *slotState) answer(ok bool, why string) {
	if st.waiter != nil {
		st.waiter <- result{ok, why} // buffered: the operation may have given up waiting
		st.waiter = nil
	}
}

type eventKind int

const (
	evExit eventKind = iota
	evControl
	evRestart
	evKill
	evStartTimeout
	evRequest // a function to run on the loop: the control socket's commands, operations' steps
	evTick    // housekeeping is due
	evOpDone  // the operation in progress has returned
)

type event struct {
	kind  eventKind
	child *child
	err   error
	frame wire.Frame
	slot  int
	fn    func() // evRequest: runs on the loop
}

type master struct {
	cfg   *Config
	log   *slog.Logger
	group *reuseport.Group
	start time.Time

	// The seams: how children start, what time it is, where signals come
	// from. Run sets the real ones; tests of the supervisor set fakes.
	starter Starter
	clock   schedule.Clock
	signals <-chan os.Signal
	rss     func(pid int) (int64, error) // resident memory; proc.RSS

	events chan event
	quit   chan struct{}
	wg     sync.WaitGroup // readers and waiters of every child, and operations (ops.go)

	// owned by the loop
	phase    phase
	graceful bool
	slots    map[int]*slotState
	live     map[*child]bool
	err      error
	router   router
	gen      *generation // the generation new children run
	ops      opQueue     // reloads and scaling, one at a time
	desired  int         // workers wanted

	// the ready agent the workers have direct channels to (direct.go); nil
	// while there is none, or it is stopping
	directAgent *child
	relay       bool // BROOD_MESSENGER_RELAY=1: agent traffic through the master, as before direct channels

	agentOps agentOps                // job queries: jobs.go
	profiles profiles                // broodctl pprof: profile.go
	stats    clusterStats            // for /metrics: stats.go
	rounds   map[uint64]*reopenRound // log reopening rounds in progress: logs.go
	roundSeq uint64
}

// Run runs the master until the cluster has stopped.
func Run(c *Config) error {
	if !proc.Supported {
		_, _, err := proc.Socketpair("")
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("%w: find own executable to start children: %w", ErrStart, err)
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT,
		syscall.SIGHUP, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGUSR1)
	defer signal.Stop(sigs)
	spawn := startSpawner()
	// After the last child has exited: the spawner's thread must outlive
	// every child it started (spawn.go).
	defer spawn.stop()
	m, err := newMaster(c, exe, execStarter{spawn}, schedule.SystemClock{}, sigs)
	if err != nil {
		return err
	}
	proc.SetName(c.Name + ": master")
	defer m.closeGenerations()
	return m.run()
}

// newMaster makes a master with the given seams.
func newMaster(c *Config, exe string, st Starter, clock schedule.Clock, sigs <-chan os.Signal) (*master, error) {
	gen, err := newGeneration(exe, 1)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStart, err)
	}
	m := &master{
		cfg:     c,
		log:     c.Log,
		gen:     gen,
		starter: st,
		clock:   clock,
		rss:     proc.RSS,
		signals: sigs,
		start:   clock.Now(),
		events:  make(chan event, 64),
		quit:    make(chan struct{}),
		slots:   map[int]*slotState{},
		live:    map[*child]bool{},
		desired: c.Workers,
		relay:   os.Getenv(EnvRelay) == "1",
	}
	m.router.log = c.Log
	return m, nil
}

// procsPerChild is the GOMAXPROCS a child gets: its share of the CPUs
// among the workers wanted.
func (m *master) procsPerChild() int {
	cpus := m.cfg.CPUs
	if cpus <= 0 {
		cpus = proc.CPUs()
	}
	return max(1, cpus/max(1, m.desired))
}

func (m *master) since(t time.Time) time.Duration { return m.clock.Now().Sub(t) }

// armTick schedules the next housekeeping.
func (m *master) armTick() {
	m.clock.AfterFunc(m.cfg.Housekeeping, func() { m.post(event{kind: evTick}) })
}

func (m *master) run() error {
	c := m.cfg
	m.log.Info("configuration", append(slices.Clone(c.Describe), "executable", m.gen.exe.Path)...)

	ctx, cancel := context.WithTimeout(context.Background(), c.StartTimeout)
	group, err := reuseport.Bind(ctx, c.Addr, c.Workers)
	cancel()
	if err != nil {
		return fmt.Errorf("%w: %w (set another address with WithAddr, $PORT or $BROOD_ADDR)", ErrStart, err)
	}
	m.group = group
	defer group.Close()
	if c.Sticky {
		if err := group.EnableSticky(); err != nil {
			return fmt.Errorf("%w: balance sticky: %w", ErrStart, err)
		}
	}
	if c.Shared {
		ctx, cancel := context.WithTimeout(context.Background(), c.StartTimeout)
		err := group.EnableShared(ctx)
		cancel()
		if err != nil {
			return fmt.Errorf("%w: balance shared: %w", ErrStart, err)
		}
	}

	removePID, err := m.writePIDFile()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStart, err)
	}
	defer removePID()
	ctl, err := m.startControl()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStart, err)
	}
	if ctl != nil {
		defer ctl.Close()
	}

	m.slots[agentSlot] = &slotState{backoff: c.RestartMin}
	for slot := 1; slot <= c.Workers; slot++ {
		m.slots[slot] = &slotState{backoff: c.RestartMin, sockets: []int{slot}}
	}
	m.phase = phaseStartingAgent
	m.startSlot(agentSlot)

	m.armTick()
	for m.phase < phaseStoppingWorkers || len(m.live) > 0 {
		select {
		case ev := <-m.events:
			m.handle(ev)
		case sig := <-m.signals:
			m.onSignal(sig)
		}
	}
	close(m.quit)
	m.wg.Wait()
	m.router.lost.Flush()
	if m.err == nil {
		m.log.Info("stopped")
	}
	return m.err
}

// post hands an event to the loop from another goroutine; once the loop has
// ended, events are dropped.
func (m *master) post(ev event) {
	select {
	case m.events <- ev:
	case <-m.quit:
	}
}

func (m *master) handle(ev event) {
	switch ev.kind {
	case evExit:
		m.onExit(ev.child, ev.err)
	case evControl:
		m.onControl(ev.child, ev.frame)
	case evRestart:
		st := m.slots[ev.slot]
		if st == nil || st.state != slotRestarting {
			return
		}
		st.state = slotEmpty
		if m.phase == phaseRunning && st.cur == nil && st.next == nil {
			m.startSlot(ev.slot)
		}
	case evKill:
		if !ev.child.exited() {
			ev.child.log.Warn("did not stop in time; killing it")
			_ = ev.child.proc.Kill()
		}
	case evStartTimeout:
		if ch := ev.child; ch.state == childStarting {
			ch.bootErr = fmt.Sprintf("not ready within the start timeout of %s (WithStartTimeout, $BROOD_START_TIMEOUT)", m.cfg.StartTimeout)
			ch.log.Error("start timed out; killing it", "timeout", m.cfg.StartTimeout.String())
			_ = ch.proc.Kill()
		}
	case evRequest:
		ev.fn()
	case evTick:
		m.housekeep(m.clock.Now())
		m.sendStats()
		m.armTick()
	case evOpDone:
		m.opDone()
	}
}

func (m *master) onSignal(sig os.Signal) {
	m.log.Info("signal", "signal", sig.String())
	switch sig {
	case syscall.SIGTERM, syscall.SIGINT:
		if m.phase >= phaseStoppingWorkers && m.graceful {
			m.log.Warn("second stop signal: stopping fast")
			m.stop(false)
			return
		}
		m.stop(true)
	case syscall.SIGQUIT:
		m.stop(false)
	case syscall.SIGHUP:
		m.enqueue(op{kind: opReload})
	case syscall.SIGTTIN:
		m.enqueue(op{kind: opScale, n: m.desired + 1})
	case syscall.SIGTTOU:
		m.enqueue(op{kind: opScale, n: m.desired - 1})
	case syscall.SIGUSR1:
		m.reopenLogs(nil, 0, nil)
	default:
		m.log.Warn("signal not handled by this version of brood", "signal", sig.String())
	}
}

// publishRoutes gives the readers a new snapshot of who receives what.
func (m *master) publishRoutes() {
	t := &routeTable{byPID: map[int]*wire.Conn{}}
	for c := range m.live {
		if !c.routable() {
			continue
		}
		t.byPID[c.pid] = c.conn
		if c.slot == agentSlot {
			t.agent = c.conn
		} else {
			t.workers = append(t.workers, c.conn)
		}
	}
	m.router.table.Store(t)
	m.messagingChanged() // messages.go
}

func displayAddr(a *net.TCPAddr) string {
	if a.IP == nil || a.IP.IsUnspecified() {
		return "localhost:" + strconv.Itoa(a.Port)
	}
	return a.String()
}
