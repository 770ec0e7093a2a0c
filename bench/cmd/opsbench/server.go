package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/broodhq/brood/bench/internal/target"
)

// event is one log line of the server (the master's, its children's, or
// naivereload's), access-log records left out.
type event struct {
	At       time.Time
	Level    string
	Msg      string
	Child    string // "worker 1", "agent"
	ChildPID int
	Workers  int // "scaled" and "worker added/removed"
	Raw      string
}

// server is a started master (brood's or naivereload's supervisor) whose
// stderr is read line by line.
type server struct {
	name   string
	cmd    *exec.Cmd
	addr   string
	exited chan struct{}

	mu       sync.Mutex
	events   []event
	changed  chan struct{} // closed and replaced when events grows
	requests int64         // access-log lines seen
}

func startServer(name, path string, env []string) (*server, error) {
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &server{name: name, cmd: cmd, exited: make(chan struct{}), changed: make(chan struct{})}
	read := make(chan struct{})
	go func() {
		defer close(read)
		s.read(out)
	}()
	go func() {
		<-read // Wait closes the pipe: read it to the end first
		cmd.Wait()
		close(s.exited)
	}()
	return s, nil
}

func (s *server) pid() int { return s.cmd.Process.Pid }

var requestMsg = []byte(`"msg":"request"`)

func (s *server) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.Contains(line, requestMsg) {
			s.mu.Lock()
			s.requests++
			s.mu.Unlock()
			continue
		}
		s.add(parseEvent(line))
	}
}

func parseEvent(line []byte) event {
	ev := event{At: time.Now(), Raw: string(line)}
	var rec struct {
		Time     time.Time `json:"time"`
		Level    string    `json:"level"`
		Msg      string    `json:"msg"`
		Child    string    `json:"child"`
		ChildPID int       `json:"child_pid"`
		Workers  int       `json:"workers"`
	}
	if json.Unmarshal(line, &rec) != nil {
		ev.Msg = ev.Raw
		return ev
	}
	if !rec.Time.IsZero() {
		ev.At = rec.Time
	}
	ev.Level, ev.Msg, ev.Child, ev.ChildPID, ev.Workers = rec.Level, rec.Msg, rec.Child, rec.ChildPID, rec.Workers
	return ev
}

func (s *server) add(ev event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, ev)
	close(s.changed)
	s.changed = make(chan struct{})
}

// mark is the number of events so far: waitFor looks only at later ones.
func (s *server) mark() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

func (s *server) snapshot() []event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event(nil), s.events...)
}

var errWrongOutcome = errors.New("the server logged a different outcome")

// waitFor waits, from event index from on, for an event whose message
// starts with want; one starting with any of bad ends the wait with an
// error naming it.
func (s *server) waitFor(ctx context.Context, from int, want string, bad ...string) (event, error) {
	for i := from; ; {
		s.mu.Lock()
		evs, changed := s.events[i:], s.changed
		s.mu.Unlock()
		for _, ev := range evs {
			i++
			if strings.HasPrefix(ev.Msg, want) {
				return ev, nil
			}
			for _, b := range bad {
				if strings.HasPrefix(ev.Msg, b) {
					return ev, fmt.Errorf("%w: waiting for %q, got %q", errWrongOutcome, want, ev.Msg)
				}
			}
		}
		select {
		case <-changed:
		case <-s.exited:
			return event{}, fmt.Errorf("%s exited while waiting for %q", s.name, want)
		case <-ctx.Done():
			return event{}, fmt.Errorf("waiting for %q: %w", want, context.Cause(ctx))
		}
	}
}

// waitReady waits for "ready on http://ADDR (...)" and records ADDR.
func (s *server) waitReady(ctx context.Context) error {
	ev, err := s.waitFor(ctx, 0, "ready on http://")
	if err != nil {
		return err
	}
	addr, _, _ := strings.Cut(strings.TrimPrefix(ev.Msg, "ready on http://"), " ")
	s.addr = addr
	return nil
}

func (s *server) signal(sig syscall.Signal) error { return s.cmd.Process.Signal(sig) }

// workerPIDs lists the master's children that are workers, by the
// argv[0] brood gives them ("NAME: worker N"); naivereload's children all
// count.
func (s *server) workerPIDs() []int {
	var pids []int
	for _, pid := range target.Children(s.pid()) {
		name := cmdline(pid)
		if strings.Contains(name, "worker") || strings.Contains(s.name, "naive") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitChildren waits until the master has n children: the replaced
// workers have finished draining and exited. It returns how long that took.
func (s *server) waitChildren(ctx context.Context, n int) (time.Duration, error) {
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		kids := target.Children(s.pid())
		if len(kids) == n {
			return time.Since(start), nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return time.Since(start), fmt.Errorf("waiting for %d processes under the master, have %v: %w", n, kids, context.Cause(ctx))
		}
	}
}

func cmdline(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	name, _, _ := bytes.Cut(b, []byte{0})
	return string(name)
}

// stop sends SIGTERM to the master and waits up to grace for it to exit,
// then SIGKILLs it. The processes it had started are looked up first and,
// if any outlives the master by a second, SIGKILLed by pid. It reports
// anything it had to kill.
func (s *server) stop(grace time.Duration) error {
	type proc struct {
		pid   int
		start string
	}
	var procs []proc
	var walk func(int)
	walk = func(pid int) {
		for _, c := range target.Children(pid) {
			procs = append(procs, proc{c, startTime(c)})
			walk(c)
		}
	}
	walk(s.pid())
	alive := func(p proc) bool { st := startTime(p.pid); return st != "" && st == p.start }

	var errs []error
	select {
	case <-s.exited:
	default:
		s.signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(grace):
			errs = append(errs, fmt.Errorf("%s (pid %d) still running %s after SIGTERM; killed", s.name, s.pid(), grace))
			s.cmd.Process.Kill()
			<-s.exited
		}
	}
	deadline := time.Now().Add(time.Second)
	for _, p := range procs {
		for alive(p) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if alive(p) {
			errs = append(errs, fmt.Errorf("%s child pid %d outlived its master; killed", s.name, p.pid))
			syscall.Kill(p.pid, syscall.SIGKILL)
		}
	}
	return errors.Join(errs...)
}

// startTime is field 22 of /proc/PID/stat, which with the pid names one
// process, or "" if pid is gone or a zombie.
func startTime(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return ""
	}
	return f[19]
}
