package master

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/broodhq/brood/internal/protocol"
	"github.com/broodhq/brood/internal/wire"
	"github.com/broodhq/brood/schedule"
)

// The in-process tests of the supervisor's decisions: a master loop with a
// fake Starter (children are socketpairs the test plays the far end of), a
// fake clock, and signals sent on a channel. They start no process and run
// in milliseconds; the framework's cluster tests cover real processes.

// waitFor bounds every wait of these tests: nothing here should take long,
// but the machine is shared.
const waitFor = 5 * time.Second

// fakeStarter starts fakeProcs and hands each to the test as it starts.
type fakeStarter struct {
	mu      sync.Mutex
	nextPID int
	fail    func(Spec) error // when set and it returns an error, Start fails with it
	started chan *fakeProc
	all     []*fakeProc
}

// exitAll ends every process started so far.
func (s *fakeStarter) exitAll() {
	s.mu.Lock()
	all := s.all
	s.mu.Unlock()
	for _, p := range all {
		p.exit(nil)
	}
}

func (s *fakeStarter) setFail(fn func(Spec) error) {
	s.mu.Lock()
	s.fail = fn
	s.mu.Unlock()
}

func (s *fakeStarter) Start(sp Spec) (Process, error) {
	s.mu.Lock()
	fail := s.fail
	s.nextPID++
	pid := 100000 + s.nextPID
	s.mu.Unlock()
	if fail != nil {
		if err := fail(sp); err != nil {
			return nil, err
		}
	}
	nc, err := net.FileConn(sp.Files[0])
	if err != nil {
		return nil, err
	}
	p := &fakeProc{
		pid:    pid,
		spec:   sp,
		conn:   wire.NewConn(nc, 0),
		frames: make(chan wire.Frame, 256),
		exited: make(chan struct{}),
	}
	p.role = envOf(sp, protocol.EnvRole)
	p.slot, _ = strconv.Atoi(envOf(sp, protocol.EnvSlot))
	go p.read()
	s.mu.Lock()
	s.all = append(s.all, p)
	s.mu.Unlock()
	s.started <- p
	return p, nil
}

func envOf(sp Spec, key string) string {
	for _, kv := range sp.Env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// fakeProc is a child that the test plays: it reads what the master sends,
// says what the test tells it to, and exits when told to.
type fakeProc struct {
	pid  int
	spec Spec
	role string
	slot int
	conn *wire.Conn // the child's end

	frames chan wire.Frame // frames from the master: control, and messages routed to it
	h      *harness        // the harness that took it from the starter

	once    sync.Once
	exitErr error
	exited  chan struct{}
}

func (p *fakeProc) PID() int { return p.pid }

func (p *fakeProc) Wait() error {
	<-p.exited
	return p.exitErr
}

func (p *fakeProc) Signal(sig os.Signal) error {
	if sig == syscall.SIGTERM {
		p.exit(nil)
	}
	return nil
}

func (p *fakeProc) Kill() error {
	p.exit(errors.New("signal: killed"))
	return nil
}

// exit ends the process with err (nil: status 0); its channel closes, as a
// real child's does.
func (p *fakeProc) exit(err error) {
	p.once.Do(func() {
		p.exitErr = err
		p.conn.Close(0)
		close(p.exited)
	})
}

func (p *fakeProc) read() {
	for {
		raw, err := p.conn.Read()
		if err != nil {
			return
		}
		if f, err := wire.Parse(raw); err == nil {
			select {
			case p.frames <- f:
			default:
			}
		}
	}
}

func (p *fakeProc) send(t *testing.T, f *wire.Frame) {
	t.Helper()
	if err := p.conn.SendFrame(f); err != nil {
		t.Fatalf("%s %d: send %s: %v", p.role, p.slot, f.Action, err)
	}
}

// ready says the child is ready, and waits until the loop has heard it, so
// that a test moving the clock on next cannot race the frame (a start
// timeout firing first, say).
func (p *fakeProc) ready(t *testing.T) {
	t.Helper()
	p.send(t, protocol.Control(protocol.Ready, nil))
	if p.h == nil {
		return
	}
	p.h.eventually(p.String()+" is ready", func(m *master) bool {
		for c := range m.live {
			if c.pid == p.pid {
				return c.state != childStarting
			}
		}
		return true // exited already
	})
}

// waitAction waits for the master to send action and returns it.
func (p *fakeProc) waitAction(t *testing.T, action string) wire.Frame {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case f := <-p.frames:
			if f.Action == action {
				return f
			}
		case <-deadline:
			t.Fatalf("%s %d (pid %d): no %q from the master within %s", p.role, p.slot, p.pid, action, waitFor)
		}
	}
}

// stopped reports whether the master has sent this process a stop, without
// waiting.
func (p *fakeProc) stopped() bool {
	for {
		select {
		case f := <-p.frames:
			if f.Action == protocol.Stop {
				return true
			}
		default:
			return false
		}
	}
}

func (p *fakeProc) String() string {
	if p.role == "agent" {
		return "agent pid " + strconv.Itoa(p.pid)
	}
	return "worker " + strconv.Itoa(p.slot) + " pid " + strconv.Itoa(p.pid)
}

// harness runs a master loop on fakes.
type harness struct {
	t    *testing.T
	st   *fakeStarter
	clk  *schedule.FakeClock
	sigs chan os.Signal
	m    *master
	done chan error

	finished bool // the loop returned and exited() said so
}

func testConfig(workers int) *Config {
	return &Config{
		Log:             slog.New(slog.NewTextHandler(io.Discard, nil)),
		Addr:            "127.0.0.1:0",
		Workers:         workers,
		MaxWorkers:      512,
		ShutdownTimeout: time.Second,
		StartTimeout:    10 * time.Second,
		Name:            "brood-test",
		RestartMin:      100 * time.Millisecond,
		Housekeeping:    time.Second,
		ControlSocket:   "-",
		Scheme:          "http",
		CPUs:            4,
	}
}

// start runs a master with c on fakes; the loop ends (and is waited for) by
// the end of the test.
func start(t *testing.T, c *Config) *harness {
	t.Helper()
	if testing.Verbose() {
		c.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{
		t:    t,
		st:   &fakeStarter{started: make(chan *fakeProc, 1024)},
		clk:  schedule.NewFakeClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)),
		sigs: make(chan os.Signal, 8),
		done: make(chan error, 1),
	}
	h.m, err = newMaster(c, exe, h.st, h.clk, h.sigs)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer h.m.closeGenerations()
		h.done <- h.m.run()
	}()
	t.Cleanup(func() {
		if h.finished {
			return
		}
		h.sigs <- syscall.SIGQUIT
		deadline := time.After(waitFor)
		for {
			h.st.exitAll()
			select {
			case <-h.done:
				return
			case <-time.After(10 * time.Millisecond):
			case <-deadline:
				t.Errorf("the master did not stop at the end of the test")
				return
			}
		}
	})
	return h
}

// next returns the next child the master starts.
func (h *harness) next() *fakeProc {
	h.t.Helper()
	select {
	case p := <-h.st.started:
		p.h = h
		return p
	case <-time.After(waitFor):
		h.t.Fatalf("no child started within %s", waitFor)
		return nil
	}
}

// noStart checks that the master starts nothing for a moment.
func (h *harness) noStart() {
	h.t.Helper()
	select {
	case p := <-h.st.started:
		h.t.Fatalf("%s started; want none", p)
	case <-time.After(50 * time.Millisecond):
	}
}

// onLoop runs fn on the master's loop and waits for it: tests read the
// supervisor's state the way the loop sees it.
func (h *harness) onLoop(fn func(m *master)) {
	h.t.Helper()
	done := make(chan struct{})
	select {
	case h.m.events <- event{kind: evRequest, fn: func() { fn(h.m); close(done) }}:
	case <-time.After(waitFor):
		h.t.Fatal("the loop took no request")
	}
	select {
	case <-done:
	case <-time.After(waitFor):
		h.t.Fatal("the loop did not run the request")
	}
}

// running starts the cluster: the agent and every worker report ready.
func (h *harness) running(workers int) (agent *fakeProc, ws []*fakeProc) {
	h.t.Helper()
	agent = h.next()
	if agent.role != "agent" {
		h.t.Fatalf("first child is %s; want the agent", agent)
	}
	agent.ready(h.t)
	for range workers {
		w := h.next()
		w.ready(h.t)
		ws = append(ws, w)
	}
	h.waitPhase(phaseRunning)
	return agent, ws
}

func (h *harness) phase() phase {
	var p phase
	h.onLoop(func(m *master) { p = m.phase })
	return p
}

func (h *harness) waitPhase(want phase) {
	h.t.Helper()
	deadline := time.Now().Add(waitFor)
	for h.phase() != want {
		if time.Now().After(deadline) {
			h.t.Fatalf("phase %d; want %d", h.phase(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// eventually polls cond on the loop until it holds.
func (h *harness) eventually(what string, cond func(m *master) bool) {
	h.t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		ok := false
		h.onLoop(func(m *master) { ok = cond(m) })
		if ok {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("not so within %s: %s", waitFor, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// exited waits for the master's loop to return and gives its error.
func (h *harness) exited() error {
	h.t.Helper()
	select {
	case err := <-h.done:
		h.finished = true
		return err
	case <-time.After(waitFor):
		h.t.Fatalf("the master did not return within %s", waitFor)
		return nil
	}
}

// stopOnStop makes p exit as soon as the master tells it to stop, as a
// well-behaved child does; it runs until p has exited.
func (p *fakeProc) stopOnStop() {
	go func() {
		for {
			select {
			case f := <-p.frames:
				if f.Action == protocol.Stop {
					p.exit(nil)
					return
				}
			case <-p.exited:
				return
			}
		}
	}()
}

// advanceToStart moves the fake clock on in small steps until the master
// starts a child (a restart's backoff ran out), and returns it.
func (h *harness) advanceToStart() *fakeProc {
	h.t.Helper()
	for range 2000 {
		select {
		case p := <-h.st.started:
			p.h = h
			return p
		default:
		}
		h.clk.Advance(10 * time.Millisecond)
		// Let the loop handle the timer's event before looking again.
		h.onLoop(func(*master) {})
	}
	h.t.Fatal("no child started within 20s of fake time")
	return nil
}

// heartbeat sends a heartbeat and waits until the loop has handled it (its
// Requests, which each call should make unique, are recorded).
func (p *fakeProc) heartbeat(t *testing.T, hb protocol.HeartbeatMsg) {
	t.Helper()
	p.send(t, protocol.Control(protocol.Heartbeat, hb))
	p.h.eventually(p.String()+"'s heartbeat handled", func(m *master) bool {
		for c := range m.live {
			if c.pid == p.pid {
				return c.requests == hb.Requests
			}
		}
		return true
	})
}
