package master

import (
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/broodhq/brood/internal/protocol"
)

// In-process tests of issue 11's supervisor faults (items 1, 4, 8, 12).

// exitWhenStopped makes every one of ps exit once told to stop.
func exitWhenStopped(ps ...*fakeProc) {
	for _, p := range ps {
		p.stopOnStop()
	}
}

// Item 1: a stop while a reload's successor is starting must still stop
// the agent, and the master must return.
func TestInProcessStopDuringReloadStopsTheAgent(t *testing.T) {
	h := start(t, testConfig(2))
	agent, ws := h.running(2)
	exitWhenStopped(ws...)
	h.sigs <- syscall.SIGHUP
	succ := h.next() // worker 1's successor; it never gets ready
	if succ.slot != 1 {
		t.Fatalf("reload started %s; want worker 1's successor", succ)
	}
	h.sigs <- syscall.SIGTERM
	succ.waitAction(t, protocol.Stop)
	// The successor is the last worker to go.
	h.eventually("the old workers exited", func(m *master) bool { return m.workersLeft() == 1 })
	succ.exit(nil)
	agent.waitAction(t, protocol.Stop)
	agent.exit(nil)
	if err := h.exited(); err != nil {
		t.Fatalf("stop during a reload: %v; want a clean stop", err)
	}
}

// Item 1, the scale-up case: the new slot's first worker is starting when
// the stop comes.
func TestInProcessStopDuringScaleUpStopsTheAgent(t *testing.T) {
	h := start(t, testConfig(2))
	agent, ws := h.running(2)
	exitWhenStopped(ws...)
	h.sigs <- syscall.SIGTTIN
	added := h.next()
	if added.slot != 3 {
		t.Fatalf("scale up started %s; want worker 3", added)
	}
	h.sigs <- syscall.SIGTERM
	added.waitAction(t, protocol.Stop)
	h.eventually("the old workers exited", func(m *master) bool { return m.workersLeft() == 1 })
	added.exit(nil)
	agent.waitAction(t, protocol.Stop)
	agent.exit(nil)
	if err := h.exited(); err != nil {
		t.Fatalf("stop during a scale-up: %v; want a clean stop", err)
	}
}

// Item 1: a stop while the agent is being swapped (the old one has exited,
// its successor starts) must stop the successor too.
func TestInProcessStopDuringAgentSwapStopsTheNewAgent(t *testing.T) {
	h := start(t, testConfig(1))
	agent, ws := h.running(1)
	exitWhenStopped(ws...)
	h.sigs <- syscall.SIGHUP
	succ := h.next() // worker 1's successor
	succ.ready(t)
	agent.waitAction(t, protocol.Stop) // the swap stops the old agent first
	agent.exit(nil)
	newAgent := h.next()
	if newAgent.role != "agent" {
		t.Fatalf("started %s; want the new agent", newAgent)
	}
	exitWhenStopped(succ)
	h.sigs <- syscall.SIGTERM
	newAgent.waitAction(t, protocol.Stop)
	newAgent.exit(nil)
	if err := h.exited(); err != nil {
		t.Fatalf("stop during the agent swap: %v; want a clean stop", err)
	}
}

// failSlot makes every start of the given slot fail as exec does when the
// binary is not executable; slot 0 is the agent.
func failSlot(h *harness, slot int) {
	h.st.setFail(func(sp Spec) error {
		if (slot == agentSlot && envOf(sp, protocol.EnvRole) == "agent") ||
			(slot != agentSlot && envOf(sp, protocol.EnvSlot) == itoa(slot)) {
			return errors.New("fork/exec /app: permission denied")
		}
		return nil
	})
}

func itoa(n int) string { return string(rune('0' + n)) }

// Item 4: a worker whose restart cannot even exec is retried with the same
// backoff as a crash, and comes back once exec works again.
func TestInProcessFailedStartIsRetried(t *testing.T) {
	h := start(t, testConfig(2))
	_, ws := h.running(2)
	failSlot(h, 2)
	ws[1].exit(errors.New("exit status 2"))
	for _, delay := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
		h.eventually("a restart of worker 2 is scheduled", func(m *master) bool { return (m.slots[2].state == slotRestarting) })
		h.clk.Advance(delay) // the restart runs, and its exec fails
		h.eventually("the failed start went through", func(m *master) bool { return !(m.slots[2].state == slotRestarting) || m.slots[2].restarts > 0 })
	}
	h.eventually("a restart of worker 2 is scheduled", func(m *master) bool { return (m.slots[2].state == slotRestarting) })
	h.st.setFail(nil) // chmod +x
	h.clk.Advance(restartMax)
	if w := h.next(); w.slot != 2 {
		t.Fatalf("started %s; want worker 2 back", w)
	}
}

// Item 4: the agent too.
func TestInProcessFailedAgentStartIsRetried(t *testing.T) {
	h := start(t, testConfig(1))
	agent, _ := h.running(1)
	failSlot(h, agentSlot)
	agent.exit(errors.New("exit status 2"))
	h.eventually("a restart of the agent is scheduled", func(m *master) bool { return (m.slots[agentSlot].state == slotRestarting) })
	h.clk.Advance(100 * time.Millisecond) // fails
	h.eventually("another restart of the agent is scheduled", func(m *master) bool { return (m.slots[agentSlot].state == slotRestarting) })
	h.st.setFail(nil)
	h.clk.Advance(restartMax)
	if a := h.next(); a.role != "agent" {
		t.Fatalf("started %s; want the agent back", a)
	}
}

// Item 4: exec that keeps failing ends in the crash-loop breaker, which
// closes the slot's socket so that the kernel stops hashing connections to it.
func TestInProcessFailingStartsEndInTheCrashLoopBreaker(t *testing.T) {
	h := start(t, testConfig(2))
	_, ws := h.running(2)
	failSlot(h, 2)
	ws[1].exit(errors.New("exit status 2"))
	h.eventually("a restart of worker 2 is scheduled", func(m *master) bool { return (m.slots[2].state == slotRestarting) })
	given := false
	for range 240 { // two minutes of fake time, in half seconds
		h.onLoop(func(m *master) { given = (m.slots[2].state == slotGivenUp) })
		if given {
			break
		}
		h.clk.Advance(500 * time.Millisecond)
	}
	if !given {
		t.Fatal("worker 2 was never given up, although every start failed")
	}
	h.onLoop(func(m *master) {
		if m.group.File(2) != nil {
			t.Error("the given-up slot's socket is still open")
		}
	})
}

// Item 4: a scale-up whose first worker cannot exec is undone: no slot
// without a worker keeps a bound socket, and status counts what runs.
func TestInProcessScaleUpWhoseStartFailsIsUndone(t *testing.T) {
	h := start(t, testConfig(2))
	h.running(2)
	failSlot(h, 3)
	h.sigs <- syscall.SIGTTIN
	h.eventually("the scale-up is over", func(m *master) bool { return (m.ops.running == nil) })
	h.onLoop(func(m *master) {
		if f := m.group.File(3); f != nil {
			t.Error("slot 3's socket is bound with no worker to accept on it")
		}
		if st := m.status(); st.Workers != 2 {
			t.Errorf("status says %d workers; want 2, what runs", st.Workers)
		}
	})
}

// Item 8: a given-up slot can be scaled away, and status matches what runs.
func TestInProcessGivenUpSlotIsScaledAway(t *testing.T) {
	h := start(t, testConfig(2))
	_, ws := h.running(2)
	giveUp(t, h, ws[1])
	h.onLoop(func(m *master) {
		if st := m.status(); st.Workers != 1 {
			t.Errorf("after the give-up: status says %d workers; want 1", st.Workers)
		}
	})
	h.onLoop(func(m *master) { m.enqueue(op{kind: opScale, n: 1}) })
	h.eventually("the scale-down is over", func(m *master) bool { return (m.ops.running == nil) })
	h.noStart() // nothing to take over: the given-up slot serves nothing
	h.onLoop(func(m *master) {
		if got := m.workerSlots(); !slices.Equal(got, []int{1}) {
			t.Errorf("worker slots %v after scale 1; want [1]", got)
		}
	})
	h.onLoop(func(m *master) { m.enqueue(op{kind: opScale, n: 3}) })
	for range 2 {
		w := h.next()
		w.ready(t)
	}
	h.eventually("the scale-up is over", func(m *master) bool { return (m.ops.running == nil) })
	h.onLoop(func(m *master) {
		st := m.status()
		workers := 0
		for _, p := range st.Processes {
			if p.Role == "worker" && p.PID != 0 {
				workers++
			}
		}
		if st.Workers != 3 || workers != 3 {
			t.Errorf("after scale 3: status says %d workers with %d processes; want 3 and 3", st.Workers, workers)
		}
	})
}

// giveUp crashes w's slot until the breaker gives it up.
func giveUp(t *testing.T, h *harness, w *fakeProc) {
	t.Helper()
	slot := w.slot
	for range 2 * crashLoopExits {
		w.exit(errors.New("exit status 9"))
		given := false
		h.eventually("the exit was handled", func(m *master) bool {
			given = (m.slots[slot].state == slotGivenUp)
			return given || (m.slots[slot].state == slotRestarting)
		})
		if given {
			return
		}
		w = h.advanceToStart()
	}
	t.Fatalf("worker %d was not given up", slot)
}

// Item 12: workers' GOMAXPROCS follow the worker count: a scale-down's
// surviving worker gets the larger share.
func TestInProcessGOMAXPROCSFollowsTheWorkerCount(t *testing.T) {
	c := testConfig(1)
	c.CPUs, c.ShareCPUs = 4, true
	h := start(t, c)
	_, ws := h.running(1)
	if got := envOf(ws[0].spec, "GOMAXPROCS"); got != "4" {
		t.Fatalf("one worker on 4 CPUs: GOMAXPROCS=%s; want 4", got)
	}
	exitWhenStopped(ws[0])
	h.onLoop(func(m *master) { m.enqueue(op{kind: opScale, n: 2}) })
	w2 := h.next()
	if got := envOf(w2.spec, "GOMAXPROCS"); got != "2" {
		t.Errorf("second worker: GOMAXPROCS=%s; want 2", got)
	}
	w2.ready(t)
	h.eventually("the scale-up is over", func(m *master) bool { return (m.ops.running == nil) })
	h.onLoop(func(m *master) { m.enqueue(op{kind: opScale, n: 1}) })
	adopter := h.next() // worker 1's successor, taking over slot 2's socket
	if got := envOf(adopter.spec, "GOMAXPROCS"); got != "4" {
		t.Errorf("the one worker left after scale 1: GOMAXPROCS=%s; want 4", got)
	}
}

// A worker replaced while the cluster runs is told its sockets are handed
// over (it keeps idle keep-alive connections for their next request), a
// hung one and one stopped with the cluster are not.
func TestInProcessStopFramesSayWhetherSocketsAreHandedOver(t *testing.T) {
	c := testConfig(2)
	c.HangTimeout, c.Housekeeping = 2*time.Second, 500*time.Millisecond
	h := start(t, c)
	_, ws := h.running(2)
	handedOver := func(p *fakeProc) bool {
		t.Helper()
		var msg protocol.StopMsg
		if err := protocol.Decode(p.waitAction(t, protocol.Stop), &msg); err != nil {
			t.Fatal(err)
		}
		return msg.HandedOver
	}
	ws[0].send(t, protocol.Control(protocol.Recycle, protocol.RecycleMsg{Requests: 1}))
	succ := h.next()
	succ.ready(t)
	if !handedOver(ws[0]) {
		t.Error("a recycled worker's stop does not say its sockets are handed over")
	}
	ws[1].heartbeat(t, protocol.HeartbeatMsg{Requests: 1, InFlight: 1, Progress: 3})
	for i := range 6 {
		succ.heartbeat(t, protocol.HeartbeatMsg{Requests: uint64(i + 1)}) // idle: not hung
		h.clk.Advance(500 * time.Millisecond)
		h.onLoop(func(*master) {})
	}
	if handedOver(ws[1]) {
		t.Error("a hung worker's stop says its sockets are handed over")
	}
	h.sigs <- syscall.SIGTERM
	if handedOver(succ) {
		t.Error("a worker stopped with the cluster is told its sockets are handed over")
	}
}

// A worker that cannot even be started while the cluster starts fails the
// start, as one that dies then does (the master used to wait forever).
func TestInProcessFailedExecAtStartupFailsTheStart(t *testing.T) {
	h := start(t, testConfig(2))
	agent := h.next()
	failSlot(h, 2)
	agent.ready(t)
	w1 := h.next()
	exitWhenStopped(agent, w1)
	err := h.exited()
	if !errors.Is(err, ErrStart) {
		t.Fatalf("got %v; want ErrStart", err)
	}
	if !strings.Contains(err.Error(), "worker 2") || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("the error %q does not name worker 2 and why", err)
	}
}
