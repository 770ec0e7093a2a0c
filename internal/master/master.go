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
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/broodhq/brood/internal/proc"
	"github.com/broodhq/brood/internal/protocol"
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
	progressSeq  uint64
	lastProgress time.Time
	hung         bool // replaced as hung: its idle connections are not kept (stopChild)
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
	drain    time.Duration // how long the replaced process gets to drain; 0: the shutdown timeout
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

	agentOps agentOps                // job queries: jobs.go
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

// startSlot starts the child for a slot; a failure to even exec counts as
// an exit so that the same restart policy applies.
func (m *master) startSlot(slot int) {
	ch, err := m.startChild(slot, m.gen)
	if err != nil {
		m.startFailed(slot, err)
		return
	}
	st := m.slots[slot]
	st.cur, st.state = ch, slotActive
}

// startFailed applies the restart policy to a slot whose child could not
// even be started (fork or exec failed: too many open files, a binary that
// is not executable for a moment): as for a child that died, a restart
// after the backoff, and the crash-loop breaker if it keeps failing. Before
// the cluster is running it fails the start, as a child dying then does.
func (m *master) startFailed(slot int, err error) {
	st := m.slots[slot]
	c := &child{slot: slot, started: m.clock.Now(), state: childExited}
	c.log = m.log.With("child", c.name())
	why := "could not start: " + err.Error()
	switch {
	case m.phase >= phaseStoppingWorkers || st == nil || st.state != slotEmpty:
		c.log.Debug("not started", "err", why)
	case m.phase < phaseRunning:
		c.log.Error("failed to start", "err", why)
		if m.err == nil {
			m.err = fmt.Errorf("%w: %s failed to start: %s", ErrStart, c.name(), why)
		}
		m.stop(false)
	default:
		m.scheduleRestart(c, st, why)
		if slot == agentSlot {
			m.messagingChanged() // the agent is coming, or given up: hold or drop
		}
	}
}

// orphaned is called when a slot's replacement could not be started: if
// nothing serves the slot any more, the restart policy takes it over.
func (m *master) orphaned(slot int, err error) {
	if st := m.slots[slot]; st != nil && st.state == slotEmpty && st.cur == nil && st.next == nil && m.phase == phaseRunning {
		m.startFailed(slot, err)
	}
}

func (m *master) startChild(slot int, gen *generation) (*child, error) {
	role := "worker"
	title := fmt.Sprintf("%s: worker %d", m.cfg.Name, slot)
	env := append(childEnv(), protocol.EnvMaster+"="+strconv.Itoa(os.Getpid()), protocol.EnvGeneration+"="+strconv.Itoa(gen.n))
	parent, childEnd, err := proc.Socketpair("brood-channel")
	if err != nil {
		return nil, err
	}
	defer childEnd.Close()
	files := []*os.File{childEnd}
	st := m.slots[slot]
	if slot == agentSlot {
		role, title = "agent", m.cfg.Name+": agent"
		env = append(env, protocol.EnvRole+"=agent")
		// The agent is one more process on the workers' cores, so it gets a
		// worker's share of them too. With more, every call it answers wakes
		// a second thread that competes with the workers for a core
		// (bench/messenger: CallAgent p50 81 -> 65 us on 2 busy cores).
		if m.cfg.ShareCPUs {
			env = append(env, "GOMAXPROCS="+strconv.Itoa(m.procsPerChild()))
		}
	} else {
		ids := make([]string, len(st.sockets))
		for i, id := range st.sockets {
			f := m.group.File(id)
			if f == nil {
				parent.Close()
				return nil, fmt.Errorf("start worker %d: socket %d is closed", slot, id)
			}
			files = append(files, f)
			ids[i] = strconv.Itoa(id)
		}
		env = append(env, protocol.EnvRole+"=worker", protocol.EnvSlot+"="+strconv.Itoa(slot), protocol.EnvSockets+"="+strings.Join(ids, ","))
		// N workers that each schedule on every core fight one another's
		// schedulers and collectors.
		if m.cfg.ShareCPUs {
			env = append(env, "GOMAXPROCS="+strconv.Itoa(m.procsPerChild()))
		}
	}
	path := gen.exe.Path
	if gen.exe.Replaced() {
		// A deploy moved another binary to the path (a rollback to this
		// generation): the child execs the held file, inherited after
		// its other descriptors.
		files = append(files, gen.exe.File())
		path = "/proc/self/fd/" + strconv.Itoa(protocol.FDChannel+len(files)-1)
	}
	p, err := m.starter.Start(Spec{Path: path, Args: append([]string{title}, os.Args[1:]...), Env: env, Files: files})
	if err != nil {
		parent.Close()
		return nil, fmt.Errorf("start %s: %w", role, err)
	}
	ch := &child{
		slot:         slot,
		pid:          p.PID(),
		gen:          gen,
		sockets:      slices.Clone(st.sockets),
		proc:         p,
		conn:         wire.NewConn(parent, m.cfg.MaxMessage),
		started:      m.clock.Now(),
		readDone:     make(chan struct{}),
		state:        childStarting,
		lastProgress: m.clock.Now(),
	}
	ch.log = m.log.With("child", ch.name(), "child_pid", ch.pid)
	ch.log.Debug("started", "generation", gen.n)
	m.live[ch] = true
	m.childStarted(ch) // messages.go
	m.wg.Add(2)
	go m.readLoop(ch)
	go m.waitLoop(ch)
	m.clock.AfterFunc(m.cfg.StartTimeout, func() { m.post(event{kind: evStartTimeout, child: ch}) })
	return ch, nil
}

// childEnv is the master's environment less what must not reach children:
// systemd's notify socket belongs to the master alone.
func childEnv() []string {
	env := os.Environ()
	return slices.DeleteFunc(env, func(kv string) bool {
		return strings.HasPrefix(kv, "NOTIFY_SOCKET=") || strings.HasPrefix(kv, protocol.EnvSockets+"=") || strings.HasPrefix(kv, protocol.EnvGeneration+"=")
	})
}

func (m *master) waitLoop(ch *child) {
	defer m.wg.Done()
	err := ch.proc.Wait()
	// What the child said before it exited (why it could not boot, above
	// all) must reach the loop before its exit does: the reader ends at the
	// end of file that the exit brings, unless a grandchild kept the
	// socket open.
	select {
	case <-ch.readDone:
	case <-time.After(time.Second):
	}
	m.post(event{kind: evExit, child: ch, err: err})
}

// readLoop reads everything a child sends: control frames go to the loop,
// messages are routed straight from here so the loop is not on their path.
func (m *master) readLoop(ch *child) {
	defer m.wg.Done()
	defer close(ch.readDone)
	role := wire.RoleApp
	if ch.slot == agentSlot {
		role = wire.RoleAgent
	}
	for {
		raw, err := ch.conn.Read()
		if err != nil {
			if errors.Is(err, wire.ErrMalformed) {
				ch.log.Error("malformed frame from child; resetting its channel", "err", err)
				ch.conn.Close(0)
			}
			return
		}
		wire.SetSender(raw, role, ch.pid)
		if wire.KindOf(raw) == wire.KindControl {
			f, _ := wire.Parse(raw)
			m.post(event{kind: evControl, child: ch, frame: f})
			continue
		}
		m.router.route(raw)
	}
}

func (m *master) onControl(ch *child, f wire.Frame) {
	switch f.Action {
	case protocol.BootFailed:
		var msg protocol.BootFailedMsg
		if m.decode(ch, f, &msg) {
			ch.bootErr = msg.Error
		}
	case protocol.Ready:
		if ch.state != childStarting {
			return
		}
		ch.state, ch.readyAt = childReady, m.clock.Now()
		ch.lastProgress = ch.readyAt
		m.publishRoutes()
		m.onReady(ch)
	case protocol.Draining:
		m.agentDraining(ch)
	case protocol.Heartbeat:
		var hb protocol.HeartbeatMsg
		if m.decode(ch, f, &hb) {
			m.onHeartbeat(ch, hb)
		}
	case protocol.Recycle:
		var msg protocol.RecycleMsg
		if m.decode(ch, f, &msg) {
			m.onRecycle(ch, msg)
		}
	case protocol.ReopenLogs, protocol.LogsReopened, protocol.Jobs:
		m.onAgentOps(ch, f)
	default:
		ch.log.Debug("unknown control action", "action", f.Action)
	}
}

// decode is the master's one policy for control data (protocol.Decode):
// what does not decode is logged and the frame dropped.
func (m *master) decode(ch *child, f wire.Frame, v any) bool {
	if err := protocol.Decode(f, v); err != nil {
		ch.log.Warn("dropped a control frame that does not decode", "err", err)
		return false
	}
	return true
}

func (m *master) onReady(ch *child) {
	st := m.slots[ch.slot]
	switch {
	case m.phase == phaseStartingAgent && ch.slot == agentSlot:
		ch.log.Info("agent ready", "ms", m.since(ch.started).Milliseconds())
		m.phase = phaseStartingWorkers
		for slot := 1; slot <= m.cfg.Workers; slot++ {
			m.startSlot(slot)
			if m.phase != phaseStartingWorkers {
				return // a start failure began stopping
			}
		}
	case m.phase == phaseStartingWorkers:
		for slot := 1; slot <= m.cfg.Workers; slot++ {
			if cur := m.slots[slot].cur; cur == nil || cur.state != childReady {
				return
			}
		}
		m.phase = phaseRunning
		m.log.Info(fmt.Sprintf("ready on %s://%s (%d workers, %d ms)", m.cfg.Scheme,
			displayAddr(m.group.Addr()), m.cfg.Workers, m.since(m.start).Milliseconds()))
		for c := range m.live {
			_ = c.conn.SendFrame(protocol.Control(protocol.ClusterReady, nil))
		}
		m.notifyReady()
	case m.phase == phaseRunning && st.next == ch:
		_ = ch.conn.SendFrame(protocol.Control(protocol.ClusterReady, nil))
		m.promote(ch.slot)
	case m.phase == phaseRunning:
		ch.log.Info("replacement ready", "ms", m.since(ch.started).Milliseconds())
		_ = ch.conn.SendFrame(protocol.Control(protocol.ClusterReady, nil))
	}
}

func (m *master) onExit(ch *child, err error) {
	ch.state = childExited
	delete(m.live, ch)
	if ch.conn != nil {
		ch.conn.Close(0)
	}
	m.publishRoutes()
	m.roundsChildExited(ch)
	why := exitReason(ch, err)
	st := m.slots[ch.slot]

	if m.phase >= phaseStoppingWorkers {
		// Stopping: whatever exits was told to (a reload's successor or a
		// scale-up's new worker included), and nothing is restarted or
		// rolled back; stop told the operation in progress to end.
		if st != nil {
			if st.next == ch {
				st.next = nil
			}
			if st.cur == ch {
				st.cur = nil
			}
		}
		ch.log.Debug("stopped", "status", why)
		if m.phase == phaseStoppingWorkers && m.graceful && m.workersLeft() == 0 {
			m.stopAgent()
		}
		return
	}

	switch {
	case st != nil && st.next == ch:
		// A successor died before it was ready: the process it was to
		// replace keeps serving, if there is one.
		st.next = nil
		ch.log.Error("replacement failed to start", "err", why)
		st.answer(false, why)
		if st.cur == nil && st.state == slotActive {
			m.scheduleRestart(ch, st, why)
		}
	case st != nil && st.cur == ch && st.state == slotSwapping:
		// The agent stopped for its successor, which the reload starts
		// now (ops.go).
		st.cur, st.state = nil, slotEmpty
		ch.log.Debug("stopped for its successor", "status", why)
		st.answer(true, "")
	case st != nil && st.cur == ch && st.state == slotRetired:
		st.cur = nil
		ch.log.Info("retired", "status", why)
	case st == nil || st.cur != ch:
		// A replaced worker finishing its drain.
		ch.log.Debug("stopped", "status", why)
	case m.phase < phaseRunning:
		st.cur = nil
		ch.log.Error("failed to start", "err", why)
		if m.err == nil {
			m.err = fmt.Errorf("%w: %s failed to start: %s", ErrStart, ch.name(), why)
		}
		m.stop(false)
	case st.next != nil:
		// Its successor is on the way (a reload or a hang replacement).
		st.cur = nil
		ch.log.Warn("exited while its replacement starts", "status", why)
	default:
		st.cur = nil
		m.scheduleRestart(ch, st, why)
	}
}

// scheduleRestart applies the restart policy to a slot whose process is
// gone: a restart after the backoff, or, after crashLoopExits exits within
// crashLoopWindow, none.
func (m *master) scheduleRestart(ch *child, st *slotState, why string) {
	now := m.clock.Now()
	if ch.proc != nil && now.Sub(ch.started) >= healthyAfter {
		st.backoff = m.cfg.RestartMin
	}
	st.exits = append(st.exits, now)
	for len(st.exits) > 0 && now.Sub(st.exits[0]) > crashLoopWindow {
		st.exits = st.exits[1:]
	}
	if len(st.exits) >= crashLoopExits {
		st.state = slotGivenUp
		m.messagingChanged() // what is held for a given-up agent is dropped
		if ch.slot != agentSlot {
			// Nobody will accept on this slot's sockets again, and the
			// kernel keeps hashing new connections to them: closing them
			// makes those land on the slots that still serve.
			for _, id := range st.sockets {
				if err := m.group.Remove(id); err != nil {
					ch.log.Warn("close slot socket", "err", err)
				}
			}
			// It is no worker any more: status and scaling count what
			// runs, and a scale to any size drops the slot (scale.go).
			st.sockets = nil
			m.desired--
		}
		ch.log.Error(fmt.Sprintf("%s exited %d times within %s: not restarting it; fix the cause, then restart brood or scale (broodctl scale N) to start a worker in its place",
			ch.name(), len(st.exits), crashLoopWindow), "last_exit", why)
		if m.workersLeft() == 0 && m.restartsPending() == 0 {
			m.err = fmt.Errorf("%w: last exit of %s: %s", ErrCrashLoop, ch.name(), why)
			m.stop(false)
		}
		return
	}
	delay := st.backoff
	st.backoff = min(st.backoff*2, restartMax)
	st.state = slotRestarting
	st.restarts++
	ch.log.Warn("exited unexpectedly; restarting", "status", why, "restart_in", delay.String())
	slot := ch.slot
	m.clock.AfterFunc(delay, func() { m.post(event{kind: evRestart, slot: slot}) })
}

func exitReason(ch *child, err error) string {
	why := "exit status 0"
	if err != nil {
		why = err.Error()
	}
	if ch.bootErr != "" {
		why = ch.bootErr + " (" + why + ")"
	}
	return why
}

func (m *master) workersLeft() int {
	n := 0
	for c := range m.live {
		if c.slot != agentSlot {
			n++
		}
	}
	return n
}

func (m *master) restartsPending() int {
	n := 0
	for slot, st := range m.slots {
		if slot != agentSlot && st.state == slotRestarting {
			n++
		}
	}
	return n
}

// stop begins stopping the cluster. A graceful stop lets workers finish
// their requests within the shutdown timeout, then stops the agent; a fast
// stop tells everyone at once to stop now.
func (m *master) stop(graceful bool) {
	if m.phase >= phaseStoppingWorkers && !m.graceful {
		return // already stopping fast
	}
	for _, st := range m.slots {
		if st.state == slotRestarting {
			st.state = slotEmpty // its restart event finds nothing to do
		}
		st.answer(false, errStopping.Error())
	}
	m.ops.clear()
	m.notifyStopping()
	m.graceful = graceful
	if !graceful {
		m.phase = phaseStoppingWorkers
		for c := range m.live {
			m.stopChild(c, 0, fastStopGrace)
		}
		return
	}
	m.log.Info("stopping gracefully", "timeout", m.cfg.ShutdownTimeout.String())
	m.phase = phaseStoppingWorkers
	for c := range m.live {
		if c.slot != agentSlot {
			m.stopChild(c, m.cfg.ShutdownTimeout, m.cfg.ShutdownTimeout+killGrace)
		}
	}
	if m.workersLeft() == 0 {
		m.stopAgent()
	}
}

// stopAgent stops every agent still running: the current one, and during
// a reload's swap the successor starting (the one stopping already was).
func (m *master) stopAgent() {
	m.phase = phaseStoppingAgent
	for c := range m.live {
		if c.slot == agentSlot && c.state != childExited && c.state != childDraining {
			m.stopChild(c, m.cfg.ShutdownTimeout, m.cfg.ShutdownTimeout+killGrace)
		}
	}
}

// agentDraining answers a stopping agent that has stopped its jobs and is
// about to stop its handlers: from now on nothing is sent to it (calls and
// messages wait for the next agent, if one is coming; agentlink.go), and
// "drained" tells it that what it has received is all it will get. It then
// answers all of that before its OnStop hooks run and exits, so a reload's
// agent swap fails no call.
func (m *master) agentDraining(c *child) {
	if c.slot != agentSlot || c.exited() {
		return
	}
	c.state = childDraining // also when it was sent SIGTERM by someone else
	// A no-op unless c is the agent the link sends to; the agent waits for
	// "drained" either way.
	for _, k := range m.router.agent.drain(c.conn, m.agentComing()) {
		m.router.failCallTo(k, "the agent exited before it replied; the call may or may not have run")
	}
	_ = c.conn.SendFrame(protocol.Control(protocol.Drained, nil))
}

func (m *master) stopChild(c *child, timeout, killAfter time.Duration) {
	c.state = childDraining
	// Until the cluster stops, what a child leaves is taken over; but a
	// hung worker's idle clients are better off reconnecting elsewhere than
	// sending it their next request.
	if err := c.conn.SendFrame(protocol.StopFrame(timeout, m.phase < phaseStoppingWorkers && !c.hung)); err != nil {
		// The channel is gone; a signal still reaches the child.
		_ = c.proc.Signal(syscall.SIGTERM)
	}
	m.clock.AfterFunc(killAfter, func() { m.post(event{kind: evKill, child: c}) })
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
