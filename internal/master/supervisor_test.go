package master

import (
	"context"
	"errors"
	"slices"
	"syscall"
	"testing"
	"time"

	ctlsock "github.com/broodhq/brood/internal/control"
	"github.com/broodhq/brood/internal/msglink"
	"github.com/broodhq/brood/internal/protocol"
	"github.com/broodhq/brood/internal/wire"
	"github.com/broodhq/brood/schedule"
)

func TestInProcessStartsTheAgentThenTheWorkers(t *testing.T) {
	h := start(t, testConfig(2))
	agent := h.next()
	if agent.role != "agent" {
		t.Fatalf("first start: %s; want the agent", agent)
	}
	h.noStart() // no worker before the agent is ready
	agent.ready(t)
	w1, w2 := h.next(), h.next()
	if w1.slot != 1 || w2.slot != 2 {
		t.Fatalf("started %s and %s; want workers 1 and 2", w1, w2)
	}
	w1.ready(t)
	if p := h.phase(); p != phaseStartingWorkers {
		t.Fatalf("phase %d with one worker of two ready; want starting workers", p)
	}
	w2.ready(t)
	h.waitPhase(phaseRunning)
	for _, p := range []*fakeProc{agent, w1, w2} {
		p.waitAction(t, "cluster-ready")
	}

	// A graceful stop: workers first, then the agent.
	h.sigs <- syscall.SIGTERM
	w1.waitAction(t, "stop")
	w2.waitAction(t, "stop")
	if agent.stopped() {
		t.Fatal("the agent was told to stop while workers still run")
	}
	w1.exit(nil)
	w2.exit(nil)
	agent.waitAction(t, "stop")
	agent.exit(nil)
	if err := h.exited(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
}

func TestInProcessRestartBackoffDoublesAndResetsWhenHealthy(t *testing.T) {
	h := start(t, testConfig(1))
	_, ws := h.running(1)
	w := ws[0]
	for _, delay := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
		w.exit(errors.New("exit status 3"))
		h.eventually("a restart is scheduled", func(m *master) bool { return (m.slots[1].state == slotRestarting) })
		h.clk.Advance(delay - time.Millisecond)
		h.noStart()
		h.clk.Advance(time.Millisecond)
		w = h.next()
		if w.slot != 1 {
			t.Fatalf("restarted %s; want worker 1", w)
		}
		w.ready(t)
	}
	// A worker that ran for healthyAfter resets the backoff.
	h.clk.Advance(healthyAfter)
	w.exit(errors.New("exit status 3"))
	h.eventually("a restart is scheduled", func(m *master) bool { return (m.slots[1].state == slotRestarting) })
	h.clk.Advance(100 * time.Millisecond)
	if w = h.next(); w.slot != 1 {
		t.Fatalf("restarted %s; want worker 1", w)
	}
}

// A reload replaces the workers one at a time, each only once its successor
// is ready, then swaps the agent: the old one stops before the new starts.
func TestInProcessReloadReplacesEveryProcessInTurn(t *testing.T) {
	h := start(t, testConfig(2))
	agent, ws := h.running(2)
	h.sigs <- syscall.SIGHUP
	for i, old := range ws {
		succ := h.next()
		if succ.slot != i+1 || envOf(succ.spec, "BROOD_GENERATION") != "2" {
			t.Fatalf("started %s of generation %s; want worker %d of generation 2", succ, envOf(succ.spec, "BROOD_GENERATION"), i+1)
		}
		if old.stopped() {
			t.Fatalf("%s was told to stop before its successor was ready", old)
		}
		h.noStart() // one at a time
		succ.ready(t)
		old.waitAction(t, protocol.Stop)
		old.exit(nil)
	}
	agent.waitAction(t, protocol.Stop)
	h.noStart() // the new agent waits for the old one to exit
	agent.exit(nil)
	newAgent := h.next()
	if newAgent.role != "agent" {
		t.Fatalf("started %s; want the new agent", newAgent)
	}
	newAgent.ready(t)
	h.eventually("the reload is over", func(m *master) bool { return m.ops.running == nil })
	h.onLoop(func(m *master) {
		for c := range m.live {
			if c.gen.n != 2 {
				t.Errorf("%s runs generation %d after the reload; want 2", c.name(), c.gen.n)
			}
		}
		if m.gen.n != 2 {
			t.Errorf("current generation %d; want 2", m.gen.n)
		}
	})
}

// A successor that dies before it is ready rolls the reload back: the old
// workers keep serving, none is replaced, and the old generation is
// current again.
func TestInProcessFailedReloadRollsBack(t *testing.T) {
	h := start(t, testConfig(2))
	_, ws := h.running(2)
	h.sigs <- syscall.SIGHUP
	succ := h.next()
	succ.exit(errors.New("exit status 1"))
	h.eventually("the reload is over", func(m *master) bool { return m.ops.running == nil })
	h.noStart()
	for _, w := range ws {
		if w.stopped() {
			t.Errorf("%s was stopped by a reload that rolled back", w)
		}
	}
	h.onLoop(func(m *master) {
		if m.gen.n != 1 {
			t.Errorf("current generation %d after the rollback; want 1", m.gen.n)
		}
		if got := len(m.workerSlots()); got != 2 {
			t.Errorf("%d worker slots; want 2", got)
		}
	})
}

// Scaling up binds a new slot; scaling down hands each retiring slot's
// socket to slot 1's successor before the retiring worker stops.
func TestInProcessScaleUpThenDown(t *testing.T) {
	h := start(t, testConfig(2))
	_, ws := h.running(2)
	h.onLoop(func(m *master) { m.enqueue(op{kind: opScale, n: 3}) })
	w3 := h.next()
	if w3.slot != 3 || envOf(w3.spec, protocol.EnvSockets) != "3" {
		t.Fatalf("scale up started %s serving %q; want worker 3 on socket 3", w3, envOf(w3.spec, protocol.EnvSockets))
	}
	w3.ready(t)
	h.eventually("the scale-up is over", func(m *master) bool { return m.ops.running == nil })

	h.onLoop(func(m *master) { m.enqueue(op{kind: opScale, n: 1}) })
	prev := ws[0]
	for _, retiring := range []*fakeProc{w3, ws[1]} {
		adopter := h.next()
		if adopter.slot != 1 {
			t.Fatalf("scale down started %s; want worker 1's successor", adopter)
		}
		if retiring.stopped() {
			t.Fatalf("%s stopped before its sockets were taken over", retiring)
		}
		adopter.ready(t)
		retiring.waitAction(t, protocol.Stop)
		retiring.exit(nil)
		prev.waitAction(t, protocol.Stop) // the adopter's predecessor drains
		prev.exit(nil)
		prev = adopter
	}
	if got := envOf(prev.spec, protocol.EnvSockets); got != "1,3,2" {
		t.Errorf("the one worker left serves sockets %q; want 1,3,2", got)
	}
	h.eventually("the scale-down is over", func(m *master) bool { return m.ops.running == nil })
	h.onLoop(func(m *master) {
		if st := m.status(); st.Workers != 1 {
			t.Errorf("status says %d workers; want 1", st.Workers)
		}
	})
}

// A worker that crashes crashLoopExits times within crashLoopWindow is not
// restarted, and its socket is closed.
func TestInProcessCrashLoopBreakerGivesUpTheSlot(t *testing.T) {
	h := start(t, testConfig(2))
	_, ws := h.running(2)
	giveUp(t, h, ws[1])
	h.clk.Advance(time.Minute)
	h.noStart()
	h.onLoop(func(m *master) {
		if m.group.File(2) != nil {
			t.Error("the given-up slot's socket is still open")
		}
		st := m.status()
		found := false
		for _, p := range st.Processes {
			found = found || (p.Slot == 2 && p.State == "given-up")
		}
		if !found {
			t.Errorf("status does not list slot 2 as given-up: %+v", st.Processes)
		}
	})
}

// A worker whose requests make no progress for the hang timeout is told to
// stop at once and replaced.
func TestInProcessHungWorkerIsReplaced(t *testing.T) {
	c := testConfig(1)
	c.HangTimeout, c.Housekeeping = 2*time.Second, 500*time.Millisecond
	h := start(t, c)
	_, ws := h.running(1)
	ws[0].heartbeat(t, protocol.HeartbeatMsg{Requests: 5, InFlight: 1, Progress: 7})
	for range 6 {
		h.clk.Advance(500 * time.Millisecond)
		h.onLoop(func(*master) {})
	}
	ws[0].waitAction(t, protocol.Stop)
	if succ := h.next(); succ.slot != 1 {
		t.Fatalf("started %s; want worker 1's replacement", succ)
	}
}

// A hung agent is told so (msglink.CtlHung) before it is killed, so that it
// can hand back the calls it never started; it is killed as soon as it
// confirms, or at the end of msglink.HungGrace, and then restarted.
func TestInProcessHungAgentIsToldThenKilled(t *testing.T) {
	for _, confirms := range []bool{true, false} {
		name := map[bool]string{true: "confirms", false: "silent"}[confirms]
		t.Run(name, func(t *testing.T) {
			c := testConfig(1)
			c.HangTimeout, c.Housekeeping = 2*time.Second, 500*time.Millisecond
			h := start(t, c)
			agent, ws := h.running(1)
			agent.heartbeat(t, protocol.HeartbeatMsg{InFlight: 1, Progress: 7})
			hung := false
			for i := 0; !hung; i++ { // until a tick finds it silent for longer than 2 s
				if i == 20 {
					t.Fatal("the agent was not found hung")
				}
				ws[0].heartbeat(t, protocol.HeartbeatMsg{Requests: uint64(i + 1)}) // idle: not hung
				h.clk.Advance(500 * time.Millisecond)
				h.onLoop(func(m *master) { hung = m.slots[agentSlot].cur.hung })
			}
			agent.waitAction(t, msglink.CtlHung)
			killed := func() bool {
				select {
				case <-agent.exited:
					return true
				default:
					return false
				}
			}
			if killed() {
				t.Fatal("the hung agent was killed before it could hand back its calls")
			}
			if confirms {
				agent.send(t, protocol.Control(msglink.CtlHung, msglink.Hung{Calls: 2}))
				select {
				case <-agent.exited:
				case <-time.After(waitFor):
					t.Fatal("the hung agent was not killed at its confirmation")
				}
			} else {
				h.clk.Advance(msglink.HungGrace - 100*time.Millisecond)
				h.onLoop(func(*master) {})
				if killed() {
					t.Fatal("the hung agent was killed before the end of the grace")
				}
				h.clk.Advance(100 * time.Millisecond)
				h.onLoop(func(*master) {})
				if !killed() {
					t.Fatal("the hung agent was not killed at the end of the grace")
				}
			}
			h.eventually("a restart is scheduled", func(m *master) bool { return m.slots[agentSlot].state == slotRestarting })
			h.clk.Advance(c.RestartMin)
			if next := h.next(); next.role != "agent" {
				t.Errorf("started %s; want the next agent", next)
			}
		})
	}
}

// A round of log reopening asked for by the agent ends when every child has
// answered or exited, and tells the agent who could not reopen; a silent
// child is named at the timeout.
func TestInProcessLogReopenRound(t *testing.T) {
	c := testConfig(2)
	reopened := 0
	c.ReopenLogs = func() error { reopened++; return nil }
	h := start(t, c)
	agent, ws := h.running(2)
	agent.send(t, protocol.Control(protocol.ReopenLogs, protocol.ReopenMsg{ID: 7}))
	ask := func(p *fakeProc) uint64 {
		f := p.waitAction(t, protocol.ReopenLogs)
		var msg protocol.ReopenMsg
		if err := protocol.Decode(f, &msg); err != nil {
			t.Fatal(err)
		}
		return msg.ID
	}
	id := ask(agent)
	agent.send(t, protocol.Control(protocol.LogsReopened, protocol.ReopenedMsg{ID: id}))
	ask(ws[0])
	ws[0].send(t, protocol.Control(protocol.LogsReopened, protocol.ReopenedMsg{ID: id, Error: "disk full"}))
	ask(ws[1])
	ws[1].exit(errors.New("exit status 2"))
	f := agent.waitAction(t, protocol.LogsReopened)
	var got protocol.ReopenedMsg
	if err := protocol.Decode(f, &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != 7 || !slices.Equal(got.Missing, []string{"worker 1"}) {
		t.Errorf("the agent was told %+v; want id 7, missing [worker 1] (it failed; worker 2 exited)", got)
	}

	// SIGUSR1, and a worker that never answers: named at the timeout.
	h.sigs <- syscall.SIGUSR1
	ask(ws[0])
	h.eventually("the round waits", func(m *master) bool { return len(m.rounds) == 1 })
	h.clk.Advance(protocol.ReopenTimeout)
	h.eventually("the round ended at the timeout", func(m *master) bool { return len(m.rounds) == 0 })
	h.onLoop(func(*master) {
		if reopened != 2 {
			t.Errorf("the master reopened its own files %d times; want 2", reopened)
		}
	})
}

// A worker over the memory limit, and one that served its maximum number of
// requests, are replaced through the rolling path: the old one serves until
// its successor is ready.
func TestInProcessRecycling(t *testing.T) {
	c := testConfig(2)
	c.MaxRSS = 100 << 20
	h := start(t, c)
	_, ws := h.running(2)
	over := ws[0].pid
	h.onLoop(func(m *master) {
		m.rss = func(pid int) (int64, error) {
			if pid == over {
				return 200 << 20, nil
			}
			return 10 << 20, nil
		}
	})
	h.clk.Advance(c.Housekeeping)
	succ := h.next()
	if succ.slot != 1 {
		t.Fatalf("started %s; want worker 1's replacement (over the memory limit)", succ)
	}
	if ws[0].stopped() {
		t.Fatal("worker 1 was stopped before its replacement was ready")
	}
	h.clk.Advance(c.Housekeeping)
	h.noStart() // its replacement is on the way: no second one
	succ.ready(t)
	ws[0].waitAction(t, protocol.Stop)

	ws[1].send(t, protocol.Control(protocol.Recycle, protocol.RecycleMsg{Requests: 1000}))
	if r := h.next(); r.slot != 2 {
		t.Fatalf("started %s; want worker 2's replacement (max requests)", r)
	}
	ws[1].send(t, protocol.Control(protocol.Recycle, protocol.RecycleMsg{Requests: 1001}))
	h.noStart() // asked twice: one replacement
}

// A worker that exits while its successor starts is not restarted: the
// successor takes the slot. A retired worker's exit restarts nothing.
func TestInProcessExitsThatRestartNothing(t *testing.T) {
	h := start(t, testConfig(2))
	_, ws := h.running(2)
	ws[0].send(t, protocol.Control(protocol.Recycle, protocol.RecycleMsg{Requests: 1}))
	succ := h.next()
	ws[0].exit(errors.New("exit status 2"))
	h.eventually("the exit was handled", func(m *master) bool { return m.slots[1].cur == nil })
	h.clk.Advance(time.Second) // well past a restart's backoff, short of the start timeout
	h.noStart()
	succ.ready(t)
	h.eventually("the successor serves the slot", func(m *master) bool { return m.slots[1].cur != nil && m.slots[1].cur.pid == succ.pid })

	exitWhenStopped(succ)
	h.onLoop(func(m *master) { m.enqueue(op{kind: opScale, n: 1}) })
	adopter := h.next()
	adopter.ready(t)
	ws[1].waitAction(t, protocol.Stop)
	ws[1].exit(nil)
	h.eventually("the scale-down is over", func(m *master) bool { return m.ops.running == nil })
	h.clk.Advance(time.Second)
	h.noStart()
	h.onLoop(func(m *master) {
		if st := m.slots[2].state; st != slotRetired {
			t.Errorf("slot 2 is %s after its worker retired; want retired", st)
		}
	})
}

// Messages for the agent sent while it is swapped in a reload are held by
// the master and handed to the new agent, in order, once it is ready.
func TestInProcessMessagesForTheAgentWaitForItsSuccessor(t *testing.T) {
	h := start(t, testConfig(1))
	agent, ws := h.running(1)
	toAgent := func(action string) {
		f := wire.Frame{Kind: wire.KindMessage, Route: wire.ToAgent, Action: action, Data: []byte(`1`)}
		if err := ws[0].conn.Send(f.Encode()); err != nil {
			t.Fatal(err)
		}
	}
	toAgent("before")
	agent.waitAction(t, "before")
	exitWhenStopped(ws[0])
	h.sigs <- syscall.SIGHUP
	succ := h.next()
	succ.ready(t)
	agent.waitAction(t, protocol.Stop)
	// The stopping agent asks to be sent nothing more, as a real one does.
	agent.send(t, protocol.Control(protocol.Draining, nil))
	agent.waitAction(t, protocol.Drained)
	sendFrom := func(p *fakeProc, action string) {
		f := wire.Frame{Kind: wire.KindMessage, Route: wire.ToAgent, Action: action, Data: []byte(`1`)}
		if err := p.conn.Send(f.Encode()); err != nil {
			t.Fatal(err)
		}
	}
	sendFrom(succ, "held-1")
	sendFrom(succ, "held-2")
	agent.exit(nil)
	newAgent := h.next()
	h.noStart()
	newAgent.ready(t)
	newAgent.waitAction(t, "held-1")
	newAgent.waitAction(t, "held-2")
}

// The control socket's commands reach the loop: status lists every process
// in its state, scale and stop are carried out, and a command during a stop
// is refused.
func TestInProcessControlCommands(t *testing.T) {
	h := start(t, testConfig(1))
	agent, ws := h.running(1)
	ctx := context.Background()
	res := make(chan ctlsock.Response, 1)
	go func() { res <- h.m.handleControl(ctx, ctlsock.Request{Cmd: ctlsock.CmdStatus}) }()
	// Status asks the agent for its jobs.
	q := agent.waitAction(t, protocol.Jobs)
	var jm protocol.JobsMsg
	if err := protocol.Decode(q, &jm); err != nil {
		t.Fatal(err)
	}
	agent.send(t, protocol.Control(protocol.Jobs, protocol.JobsMsg{ID: jm.ID, Jobs: []schedule.JobStatus{{Name: "flush"}}}))
	r := <-res
	if !r.OK || r.Status == nil || len(r.Status.Processes) != 3 || r.Status.Workers != 1 {
		t.Fatalf("status: %+v; want the master, the agent and one worker", r)
	}
	if len(r.Status.Jobs) == 0 {
		t.Errorf("status has no jobs: %+v", r.Status)
	}
	for _, p := range r.Status.Processes[1:] {
		if p.State != "ready" {
			t.Errorf("%s %d is %q; want ready", p.Role, p.Slot, p.State)
		}
	}
	if r := h.m.handleControl(ctx, ctlsock.Request{Cmd: ctlsock.CmdScale, N: 2}); !r.OK {
		t.Fatalf("scale 2: %+v", r)
	}
	w2 := h.next()
	w2.ready(t)
	h.eventually("the scale-up is over", func(m *master) bool { return m.ops.running == nil })
	if r := h.m.handleControl(ctx, ctlsock.Request{Cmd: ctlsock.CmdStop}); !r.OK {
		t.Fatalf("stop: %+v", r)
	}
	if r := h.m.handleControl(ctx, ctlsock.Request{Cmd: ctlsock.CmdReload}); r.OK {
		t.Errorf("reload during a stop: %+v; want it refused", r)
	}
	exitWhenStopped(ws[0], w2, agent)
	if err := h.exited(); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// When every worker slot has been given up, nothing serves: the master
// stops with ErrCrashLoop.
func TestInProcessEveryWorkerGivenUpStopsTheMaster(t *testing.T) {
	h := start(t, testConfig(1))
	agent, ws := h.running(1)
	exitWhenStopped(agent)
	w := ws[0]
	for i := range crashLoopExits {
		w.exit(errors.New("exit status 9"))
		if i == crashLoopExits-1 {
			break // the last one: the master stops
		}
		h.eventually("the exit was handled", func(m *master) bool { return m.slots[1].state == slotRestarting })
		w = h.advanceToStart()
	}
	if err := h.exited(); !errors.Is(err, ErrCrashLoop) {
		t.Fatalf("got %v; want ErrCrashLoop", err)
	}
}
