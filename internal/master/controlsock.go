package master

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"

	ctlsock "github.com/broodhq/brood/internal/control"
	"github.com/broodhq/brood/internal/pidfile"
	"github.com/broodhq/brood/internal/proc"
)

// startControl opens the control socket that cmd/broodctl talks to. Its
// handler runs on the server's goroutines and hands every command to the
// loop, which owns the state.
func (m *master) startControl() (*ctlsock.Server, error) {
	path := m.cfg.ControlSocket
	if path == "-" {
		return nil, nil
	}
	if path == "" {
		p, err := ctlsock.DefaultPath(m.cfg.Name, m.group.Addr().Port)
		if err != nil {
			return nil, fmt.Errorf("control socket: %w (set one with WithControlSocket or $BROOD_CONTROL_SOCKET, or \"-\" for none)", err)
		}
		path = p
	}
	srv, err := ctlsock.Listen(path, m.handleControl, m.log)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	m.log.Info("control socket", "path", srv.Path())
	return srv, nil
}

func (m *master) handleControl(ctx context.Context, req ctlsock.Request) ctlsock.Response {
	if err := req.Validate(); err != nil {
		return ctlsock.Fail("%v", err)
	}
	if req.Cmd == ctlsock.CmdPprof {
		return m.controlProfile(ctx, req)
	}
	res := make(chan ctlsock.Response, 1)
	var reopened chan reopenOutcome // reopen-logs answers with the round's outcome
	if req.Cmd == ctlsock.CmdReopenLogs {
		reopened = make(chan reopenOutcome, 1)
	}
	select {
	case m.events <- event{kind: evRequest, fn: func() { res <- m.controlOnLoop(req, reopened) }}:
	case <-m.quit:
		return ctlsock.Fail("the master is stopping")
	case <-ctx.Done():
		return ctlsock.Fail("the master did not take the command: %v", ctx.Err())
	}
	var r ctlsock.Response
	select {
	case r = <-res:
	case <-m.quit:
		return ctlsock.Fail("the master is stopping")
	case <-ctx.Done():
		return ctlsock.Fail("the master did not answer: %v", ctx.Err())
	}
	if reopened != nil && r.OK {
		select {
		case o := <-reopened:
			r = o.response()
		case <-ctx.Done():
			r = ctlsock.Fail("reopen-logs started, but not every process answered in time; see the master's log")
		}
	}
	if r.Status != nil {
		// The agent answers for its jobs off the loop, which must stay
		// free to deliver its reply.
		jctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if jobs, err := m.agentJobs(jctx); err == nil && len(jobs) > 0 {
			r.Status.Jobs, _ = json.Marshal(jobs)
		}
		cancel()
	}
	return r
}

func (m *master) controlOnLoop(req ctlsock.Request, reopened chan<- reopenOutcome) ctlsock.Response {
	if m.phase >= phaseStoppingWorkers && req.Cmd != ctlsock.CmdStatus {
		return ctlsock.Fail("the cluster is stopping")
	}
	switch req.Cmd {
	case ctlsock.CmdStatus:
		return ctlsock.Response{OK: true, Status: m.status()}
	case ctlsock.CmdReload:
		m.enqueue(op{kind: opReload})
		return ctlsock.Response{OK: true, Message: "reload started; follow it with status or in the log"}
	case ctlsock.CmdStop:
		m.stop(true)
		return ctlsock.Response{OK: true, Message: "stopping gracefully"}
	case ctlsock.CmdScale:
		if req.N < 1 || req.N > m.cfg.MaxWorkers {
			return ctlsock.Fail("scale %d: workers must be between 1 and %d", req.N, m.cfg.MaxWorkers)
		}
		m.enqueue(op{kind: opScale, n: req.N})
		return ctlsock.Response{OK: true, Message: fmt.Sprintf("scaling to %d workers", req.N)}
	case ctlsock.CmdReopenLogs:
		m.reopenLogs(nil, 0, reopened)
		return ctlsock.Response{OK: true}
	}
	return ctlsock.Fail("unknown command %q", req.Cmd)
}

// status describes every process; it runs on the loop.
func (m *master) status() *ctlsock.Status {
	rss, _ := proc.RSS(os.Getpid())
	state := map[phase]string{
		phaseStartingAgent: "starting", phaseStartingWorkers: "starting", phaseRunning: "running",
		phaseStoppingWorkers: "stopping", phaseStoppingAgent: "stopping",
	}[m.phase]
	operation := ""
	if o := m.ops.running; o != nil {
		state = "reloading"
		if o.kind == opScale {
			state = "scaling"
		}
		operation = o.progress()
	}
	s := &ctlsock.Status{
		App:        m.cfg.Name,
		Addr:       displayAddr(m.group.Addr()),
		Started:    m.start,
		Generation: m.gen.n,
		Workers:    len(m.workerSlots()), // what runs, or is restarting
		Operation:  operation,
		Processes: []ctlsock.Process{{
			Role: "master", PID: os.Getpid(), State: state, Started: m.start, RSS: rss, Generation: m.gen.n,
		}},
	}
	for c := range m.live {
		p := ctlsock.Process{
			Role: "worker", Slot: c.slot, PID: c.pid, State: c.state.String(), Started: c.started,
			Requests: c.requests, InFlight: c.inFlight, Accepted: c.accepted, Generation: c.gen.n,
		}
		if c.slot == agentSlot {
			p.Role = "agent"
		} else if c.state == childReady {
			s.Ready++
		}
		if st := m.slots[c.slot]; st != nil {
			p.Restarts, p.LastReason = st.restarts, st.lastReason
			if c.state == childReady && c.slot != agentSlot {
				p.Queued = m.queued(c.sockets)
			}
		}
		p.RSS, _ = proc.RSS(c.pid)
		s.Processes = append(s.Processes, p)
	}
	for slot, st := range m.slots {
		if st.state == slotGivenUp && st.cur == nil && st.next == nil {
			p := ctlsock.Process{Role: "worker", Slot: slot, State: st.state.String(), Restarts: st.restarts, LastReason: st.lastReason}
			if slot == agentSlot {
				p.Role = "agent"
			}
			s.Processes = append(s.Processes, p)
		}
	}
	slices.SortFunc(s.Processes[1:], func(a, b ctlsock.Process) int {
		if a.Slot != b.Slot {
			return a.Slot - b.Slot
		}
		return a.Started.Compare(b.Started)
	})
	return s
}

// queued is the connections waiting in the accept queues of sockets; 0
// where the kernel does not say (not Linux).
func (m *master) queued(sockets []int) int {
	n := 0
	for _, id := range sockets {
		if q, _, err := m.group.QueueDepth(id); err == nil {
			n += q
		}
	}
	return n
}

// writePIDFile writes the pidfile if one was asked for; the returned func
// removes it.
func (m *master) writePIDFile() (func(), error) {
	if m.cfg.PIDFile == "" {
		return func() {}, nil
	}
	f, err := pidfile.Write(m.cfg.PIDFile)
	if err != nil {
		return nil, err
	}
	if f.Stale != "" {
		m.log.Warn(f.Stale)
	}
	return func() {
		if err := f.Remove(); err != nil {
			m.log.Warn("remove pidfile", "err", err)
		}
	}, nil
}
