package master

import (
	"errors"
	"syscall"
	"testing"
	"time"
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
		h.eventually("a restart is scheduled", func(m *master) bool { return m.slots[1].pending })
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
	h.eventually("a restart is scheduled", func(m *master) bool { return m.slots[1].pending })
	h.clk.Advance(100 * time.Millisecond)
	if w = h.next(); w.slot != 1 {
		t.Fatalf("restarted %s; want worker 1", w)
	}
}
