package framework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/broodhq/brood/internal/proc"
	"github.com/broodhq/brood/internal/wire"
	"github.com/broodhq/brood/reuseport"
)

// ErrStart is wrapped by the error Run returns when the cluster could not
// start: a child failed before it was ready, or the address was taken.
var ErrStart = errors.New("cluster failed to start")

// ErrCrashLoop is wrapped by the error Run returns when every worker slot
// crashed too often to be restarted, leaving nothing to serve.
var ErrCrashLoop = errors.New("every worker is in a crash loop")

// Restart policy: a child that dies is restarted after a backoff that
// doubles from restartMin to restartMax and resets once the child has run
// for healthyAfter; crashLoopExits exits of one slot within crashLoopWindow
// stop restarting that slot.
const (
	restartMin      = 100 * time.Millisecond
	restartMax      = 15 * time.Second
	healthyAfter    = 30 * time.Second
	crashLoopExits  = 10
	crashLoopWindow = 60 * time.Second
	killGrace       = 5 * time.Second // after the shutdown timeout, before SIGKILL
	fastStopGrace   = 3 * time.Second
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
	sockets []int // the slot sockets a worker serves, its own first
	cmd     *exec.Cmd
	conn    *wire.Conn
	started time.Time
	ready   bool
	exited  bool
	state   string // starting, ready, draining
	bootErr string
	log     *slog.Logger

	readDone chan struct{} // closed when readLoop returns

	// from heartbeats
	requests     uint64
	progressSeq  uint64
	lastProgress time.Time
	recycling    bool
}

func (c *child) name() string {
	if c.slot == agentSlot {
		return "agent"
	}
	return "worker " + strconv.Itoa(c.slot)
}

// slotState is the history of one slot across the children that filled it.
type slotState struct {
	cur      *child
	next     *child // a successor starting while cur still serves
	onNext   func(ok bool, why string)
	sockets  []int // the sockets this slot's worker serves
	backoff  time.Duration
	exits    []time.Time
	restarts int
	givenUp  bool
	pending  bool // a restart is scheduled
	retired  bool // scaled away: its sockets are served by another slot
	drain    time.Duration
}

type eventKind int

const (
	evExit eventKind = iota
	evControl
	evRestart
	evKill
	evStartTimeout
	evRequest // an operation asked for by the control socket
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
	cfg   *config
	log   *slog.Logger
	group *reuseport.Group
	spawn *spawner
	start time.Time

	events chan event
	quit   chan struct{}
	wg     sync.WaitGroup // readers and waiters of every child

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

	agentOps agentOps // log reopening rounds and job queries: jobs.go, logs.go

	// agentSwap is set while the agent is being replaced: the old one is
	// stopping, and its exit starts the new one instead of a restart.
	agentSwap bool
}

func runMaster(c *config, log *slog.Logger) error {
	if !proc.Supported {
		_, _, err := proc.Socketpair("")
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("%w: find own executable to start children: %w", ErrStart, err)
	}
	gen, err := newGeneration(exe, 1)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStart, err)
	}
	m := &master{
		cfg:     c,
		log:     log,
		gen:     gen,
		start:   time.Now(),
		events:  make(chan event, 64),
		quit:    make(chan struct{}),
		slots:   map[int]*slotState{},
		live:    map[*child]bool{},
		desired: c.workers,
	}
	m.router.log = log
	proc.SetName(c.name + ": master")
	defer m.closeGenerations()
	return m.run()
}

func (m *master) run() error {
	c := m.cfg
	m.log.Info("configuration",
		"addr", c.addr, "addr_from", c.source["addr"],
		"workers", c.workers, "workers_from", c.source["workers"],
		"shutdown_timeout", c.shutdownTimeout.String(), "start_timeout", c.startTimeout.String(),
		"hang_timeout", c.ops.hangTimeout.String(), "max_requests", c.ops.maxRequests, "max_rss", c.ops.maxRSS,
		"balance", c.balancePolicy(),
		"executable", m.gen.exe.Path)

	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT,
		syscall.SIGHUP, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGUSR1)
	defer signal.Stop(sigs)

	ctx, cancel := context.WithTimeout(context.Background(), c.startTimeout)
	group, err := reuseport.Bind(ctx, c.addr, c.workers)
	cancel()
	if err != nil {
		return fmt.Errorf("%w: %w (set another address with WithAddr, $PORT or $BROOD_ADDR)", ErrStart, err)
	}
	m.group = group
	defer group.Close()
	if err := c.applyBalance(group); err != nil {
		return fmt.Errorf("%w: %w", ErrStart, err)
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

	m.spawn = startSpawner()
	defer m.spawn.stop()

	m.slots[agentSlot] = &slotState{backoff: c.restartMin}
	for slot := 1; slot <= c.workers; slot++ {
		m.slots[slot] = &slotState{backoff: c.restartMin, sockets: []int{slot}}
	}
	m.phase = phaseStartingAgent
	m.startSlot(agentSlot)

	tick := time.NewTicker(c.housekeepingEvery())
	defer tick.Stop()
	for m.phase < phaseStoppingWorkers || len(m.live) > 0 {
		select {
		case ev := <-m.events:
			m.handle(ev)
		case sig := <-sigs:
			m.onSignal(sig)
		case now := <-tick.C:
			m.housekeep(now)
		}
	}
	close(m.quit)
	m.wg.Wait()
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
		if st == nil || !st.pending {
			return
		}
		st.pending = false
		if m.phase == phaseRunning && st.cur == nil && st.next == nil {
			m.startSlot(ev.slot)
		}
	case evKill:
		if !ev.child.exited {
			ev.child.log.Warn("did not stop in time; killing it")
			_ = ev.child.cmd.Process.Kill()
		}
	case evStartTimeout:
		if ch := ev.child; !ch.exited && !ch.ready {
			ch.bootErr = fmt.Sprintf("not ready within the start timeout of %s (WithStartTimeout, $BROOD_START_TIMEOUT)", m.cfg.startTimeout)
			ch.log.Error("start timed out; killing it", "timeout", m.cfg.startTimeout.String())
			_ = ch.cmd.Process.Kill()
		}
	case evRequest:
		ev.fn()
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
		m.reopenLogs(nil, 0)
	default:
		m.log.Warn("signal not handled by this version of brood", "signal", sig.String())
	}
}

// startSlot starts the child for a slot; a failure to even exec counts as
// an exit so that the same restart policy applies.
func (m *master) startSlot(slot int) {
	ch, err := m.startChild(slot, m.gen)
	if err != nil {
		m.log.Error("could not start child", "slot", slot, "err", err)
		m.onExit(&child{slot: slot, log: m.log, bootErr: err.Error(), exited: true}, err)
		return
	}
	m.slots[slot].cur = ch
}

func (m *master) startChild(slot int, gen *generation) (*child, error) {
	role := "worker"
	title := fmt.Sprintf("%s: worker %d", m.cfg.name, slot)
	env := append(childEnv(), envMaster+"="+strconv.Itoa(os.Getpid()), envGeneration+"="+strconv.Itoa(gen.n))
	parent, childEnd, err := proc.Socketpair("brood-channel")
	if err != nil {
		return nil, err
	}
	defer childEnd.Close()
	files := []*os.File{childEnd}
	st := m.slots[slot]
	if slot == agentSlot {
		role, title = "agent", m.cfg.name+": agent"
		env = append(env, envRole+"=agent")
		// The agent is one more process on the workers' cores, so it gets a
		// worker's share of them too. With more, every call it answers wakes
		// a second thread that competes with the workers for a core
		// (bench/messenger: CallAgent p50 81 -> 65 us on 2 busy cores).
		if os.Getenv("GOMAXPROCS") == "" {
			env = append(env, "GOMAXPROCS="+strconv.Itoa(max(1, proc.CPUs()/m.desired)))
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
		env = append(env, envRole+"=worker", envSlot+"="+strconv.Itoa(slot), envSockets+"="+strings.Join(ids, ","))
		// N workers that each schedule on every core fight one another's
		// schedulers and collectors.
		if os.Getenv("GOMAXPROCS") == "" {
			env = append(env, "GOMAXPROCS="+strconv.Itoa(max(1, proc.CPUs()/m.desired)))
		}
	}
	path := gen.exe.Path
	if gen.exe.Replaced() {
		// A deploy moved another binary to the path (a rollback to this
		// generation): the child execs the held file, inherited after
		// its other descriptors.
		files = append(files, gen.exe.File())
		path = "/proc/self/fd/" + strconv.Itoa(fdChannel+len(files)-1)
	}
	cmd := &exec.Cmd{
		Path:        path,
		Args:        append([]string{title}, os.Args[1:]...),
		Env:         env,
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
		ExtraFiles:  files,
		SysProcAttr: proc.ChildAttr(),
	}
	if err := m.spawn.start(cmd); err != nil {
		parent.Close()
		return nil, fmt.Errorf("start %s: %w", role, err)
	}
	ch := &child{
		slot:         slot,
		pid:          cmd.Process.Pid,
		gen:          gen,
		sockets:      slices.Clone(st.sockets),
		cmd:          cmd,
		conn:         wire.NewConn(parent, m.cfg.maxMessage),
		started:      time.Now(),
		readDone:     make(chan struct{}),
		state:        "starting",
		lastProgress: time.Now(),
	}
	ch.log = m.log.With("child", ch.name(), "child_pid", ch.pid)
	ch.log.Debug("started", "generation", gen.n)
	m.live[ch] = true
	m.childStarted(ch) // messages.go
	m.wg.Add(2)
	go m.readLoop(ch)
	go m.waitLoop(ch)
	time.AfterFunc(m.cfg.startTimeout, func() { m.post(event{kind: evStartTimeout, child: ch}) })
	return ch, nil
}

// childEnv is the master's environment less what must not reach children:
// systemd's notify socket belongs to the master alone.
func childEnv() []string {
	env := os.Environ()
	return slices.DeleteFunc(env, func(kv string) bool {
		return strings.HasPrefix(kv, "NOTIFY_SOCKET=") || strings.HasPrefix(kv, envSockets+"=") || strings.HasPrefix(kv, envGeneration+"=")
	})
}

func (m *master) waitLoop(ch *child) {
	defer m.wg.Done()
	err := ch.cmd.Wait()
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
	case ctlBootFailed:
		var msg bootFailedMsg
		_ = json.Unmarshal(f.Data, &msg)
		ch.bootErr = msg.Error
	case ctlReady:
		if ch.exited || ch.ready {
			return
		}
		ch.ready = true
		ch.state = "ready"
		ch.lastProgress = time.Now()
		m.publishRoutes()
		m.onReady(ch)
	case ctlDraining:
		m.agentDraining(ch)
	case ctlHeartbeat:
		m.onHeartbeat(ch, f.Data)
	case ctlRecycle:
		m.onRecycle(ch, f.Data)
	case ctlReopenLogs, ctlLogsReopened, ctlJobs:
		m.onAgentOps(ch, f)
	default:
		ch.log.Debug("unknown control action", "action", f.Action)
	}
}

func (m *master) onReady(ch *child) {
	st := m.slots[ch.slot]
	switch {
	case m.phase == phaseStartingAgent && ch.slot == agentSlot:
		ch.log.Info("agent ready", "ms", time.Since(ch.started).Milliseconds())
		m.phase = phaseStartingWorkers
		for slot := 1; slot <= m.cfg.workers; slot++ {
			m.startSlot(slot)
			if m.phase != phaseStartingWorkers {
				return // a start failure began stopping
			}
		}
	case m.phase == phaseStartingWorkers:
		for slot := 1; slot <= m.cfg.workers; slot++ {
			if cur := m.slots[slot].cur; cur == nil || !cur.ready {
				return
			}
		}
		m.phase = phaseRunning
		m.log.Info(fmt.Sprintf("ready on %s://%s (%d workers, %d ms)", m.cfg.scheme(),
			displayAddr(m.group.Addr()), m.cfg.workers, time.Since(m.start).Milliseconds()))
		for c := range m.live {
			_ = c.conn.SendFrame(control(ctlClusterReady, nil))
		}
		m.notifyReady()
	case m.phase == phaseRunning && st.next == ch:
		_ = ch.conn.SendFrame(control(ctlClusterReady, nil))
		m.promote(ch.slot)
	case m.phase == phaseRunning:
		ch.log.Info("replacement ready", "ms", time.Since(ch.started).Milliseconds())
		_ = ch.conn.SendFrame(control(ctlClusterReady, nil))
	}
}

func (m *master) onExit(ch *child, err error) {
	ch.exited = true
	delete(m.live, ch)
	if ch.conn != nil {
		ch.conn.Close(0)
	}
	m.publishRoutes()
	why := exitReason(ch, err)
	st := m.slots[ch.slot]

	switch {
	case st != nil && st.next == ch:
		// A successor died before it was ready: the worker it was to
		// replace keeps serving.
		st.next = nil
		ch.log.Error("replacement failed to start", "err", why)
		done := st.onNext
		st.onNext = nil
		if done != nil {
			done(false, why)
		}
		if st.cur == nil && st.next == nil && m.phase == phaseRunning && !st.pending && !st.retired {
			m.scheduleRestart(ch, st, why)
		}
		return
	case st != nil && st.cur == ch && ch.slot == agentSlot && m.agentSwap:
		st.cur = nil
		m.agentSwap = false
		m.startSuccessorAgent(st)
		return
	case st != nil && st.cur == ch && st.retired:
		st.cur = nil
		ch.log.Info("retired", "status", why)
		return
	case st == nil || st.cur != ch:
		// A replaced worker finishing its drain, or a retired slot.
		ch.log.Debug("stopped", "status", why)
		if m.phase == phaseStoppingWorkers && m.graceful && m.workersLeft() == 0 {
			m.stopAgent()
		}
		return
	}
	st.cur = nil

	switch {
	case m.phase >= phaseStoppingWorkers:
		ch.log.Debug("stopped", "status", why)
		if m.phase == phaseStoppingWorkers && m.graceful && m.workersLeft() == 0 {
			m.stopAgent()
		}
		return
	case m.phase < phaseRunning:
		ch.log.Error("failed to start", "err", why)
		if m.err == nil {
			m.err = fmt.Errorf("%w: %s failed to start: %s", ErrStart, ch.name(), why)
		}
		m.stop(false)
		return
	case st.next != nil:
		// Its successor is on the way (a reload or a hang replacement).
		ch.log.Warn("exited while its replacement starts", "status", why)
		return
	}
	m.scheduleRestart(ch, st, why)
}

func (m *master) scheduleRestart(ch *child, st *slotState, why string) {
	now := time.Now()
	if ch.cmd != nil && now.Sub(ch.started) >= healthyAfter {
		st.backoff = m.cfg.restartMin
	}
	st.exits = append(st.exits, now)
	for len(st.exits) > 0 && now.Sub(st.exits[0]) > crashLoopWindow {
		st.exits = st.exits[1:]
	}
	if len(st.exits) >= crashLoopExits {
		st.givenUp = true
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
		}
		ch.log.Error(fmt.Sprintf("%s exited %d times within %s: not restarting it; fix the cause and restart brood",
			ch.name(), len(st.exits), crashLoopWindow), "last_exit", why)
		if m.workersLeft() == 0 && m.restartsPending() == 0 {
			m.err = fmt.Errorf("%w: last exit of %s: %s", ErrCrashLoop, ch.name(), why)
			m.stop(false)
		}
		return
	}
	delay := st.backoff
	st.backoff = min(st.backoff*2, restartMax)
	st.pending = true
	st.restarts++
	ch.log.Warn("exited unexpectedly; restarting", "status", why, "restart_in", delay.String())
	slot := ch.slot
	time.AfterFunc(delay, func() { m.post(event{kind: evRestart, slot: slot}) })
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
		if slot != agentSlot && st.pending {
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
		st.pending = false
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
	m.log.Info("stopping gracefully", "timeout", m.cfg.shutdownTimeout.String())
	m.phase = phaseStoppingWorkers
	for c := range m.live {
		if c.slot != agentSlot {
			m.stopChild(c, m.cfg.shutdownTimeout, m.cfg.shutdownTimeout+killGrace)
		}
	}
	if m.workersLeft() == 0 {
		m.stopAgent()
	}
}

func (m *master) stopAgent() {
	m.phase = phaseStoppingAgent
	if a := m.slots[agentSlot].cur; a != nil && !a.exited {
		m.stopChild(a, m.cfg.shutdownTimeout, m.cfg.shutdownTimeout+killGrace)
	}
}

// agentDraining answers a stopping agent that has stopped its jobs and is
// about to stop its handlers: from now on nothing is sent to it (calls and
// messages wait for the next agent, if one is coming; agentlink.go), and
// "drained" tells it that what it has received is all it will get. It then
// answers all of that before its OnStop hooks run and exits, so a reload's
// agent swap fails no call.
func (m *master) agentDraining(c *child) {
	if c.slot != agentSlot || c.exited {
		return
	}
	c.state = "draining" // also when it was sent SIGTERM by someone else
	// A no-op unless c is the agent the link sends to; the agent waits for
	// "drained" either way.
	for _, k := range m.router.agent.drain(c.conn, m.agentComing()) {
		m.router.failCallTo(k, "the agent exited before it replied; the call may or may not have run")
	}
	_ = c.conn.SendFrame(control(ctlDrained, nil))
}

func (m *master) stopChild(c *child, timeout, killAfter time.Duration) {
	c.state = "draining"
	if err := c.conn.SendFrame(stopFrame(timeout)); err != nil {
		// The channel is gone; a signal still reaches the child.
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
	time.AfterFunc(killAfter, func() { m.post(event{kind: evKill, child: c}) })
}

// publishRoutes gives the readers a new snapshot of who receives what.
func (m *master) publishRoutes() {
	t := &routeTable{byPID: map[int]*wire.Conn{}}
	for c := range m.live {
		if !c.ready {
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
