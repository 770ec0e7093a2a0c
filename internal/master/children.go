package master

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/broodhq/brood/internal/msglink"
	"github.com/broodhq/brood/internal/proc"
	"github.com/broodhq/brood/internal/protocol"
	"github.com/broodhq/brood/internal/wire"
	"github.com/broodhq/brood/reuseport"
)

// A child's life as the loop sees it: started (startChild), reading and
// waiting for it off the loop (readLoop, waitLoop), its control frames, its
// readiness and its exit, and the restart policy that follows.

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
		if m.cfg.Shared {
			files = append(files, m.group.File(reuseport.SharedSlot))
			ids = append(ids, protocol.SharedSocket)
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
	case msglink.CtlDirectReset:
		m.directReset(ch, f)
	case msglink.CtlHung:
		m.onHungAgent(ch, f)
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
	case protocol.Profile:
		m.onProfile(ch, f)
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
	st.lastReason = why
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
