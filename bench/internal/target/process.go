package target

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Spec says how to start a server.
type Spec struct {
	Name string   // for reports, e.g. "brood" or "plain"
	Path string   // the binary
	Env  []string // added to this process's environment, after BROOD_ADDR
	// DiscardOutput sends the server's stdout and stderr straight to
	// /dev/null instead of through this process, for servers that log
	// every request: copying their output would cost the benchmark's
	// own process (where the generator may run) CPU per request.
	DiscardOutput bool
}

// Process is a started server.
type Process struct {
	Spec    Spec
	Addr    string    // 127.0.0.1:port it was told to serve on
	Started time.Time // just before fork/exec
	cmd     *exec.Cmd
	out     *tail
	exited  chan struct{}
	waitErr error
}

// FreeAddr returns a 127.0.0.1 address with a port nothing listens on right
// now. Another process could take it before the server binds it; on this
// machine nothing else binds ports in that range while benchmarks run.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Start execs spec's binary told to serve on addr. Its output is kept (the
// last few KB) for error messages; stdin is closed.
func Start(spec Spec, addr string) (*Process, error) {
	cmd := exec.Command(spec.Path)
	cmd.Env = append(append(os.Environ(), "BROOD_ADDR="+addr), spec.Env...)
	out := &tail{max: 8 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	if spec.DiscardOutput {
		null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", spec.Name, err)
		}
		defer null.Close() // the child has its own copy once started
		cmd.Stdout, cmd.Stderr = null, null
	}
	p := &Process{Spec: spec, Addr: addr, cmd: cmd, out: out, exited: make(chan struct{})}
	p.Started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// PID is the server's (for brood, the master's) pid.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Output is the end of what the server wrote to stdout and stderr.
func (p *Process) Output() string { return p.out.String() }

// WaitServing connects and sends GET path until a response with status
// 200 arrives, and returns the time from exec to that response. Refused
// connections are retried every poll interval; ctx bounds the whole wait.
func (p *Process) WaitServing(ctx context.Context, path string, poll time.Duration) (time.Duration, error) {
	var d net.Dialer
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: " + p.Addr + "\r\nConnection: close\r\n\r\n")
	for {
		status, err := get(ctx, &d, p.Addr, req)
		if err == nil && status == 200 {
			return time.Since(p.Started), nil
		}
		select {
		case <-p.exited:
			return 0, fmt.Errorf("%s exited before serving (%v): %s", p.Spec.Name, p.waitErr, p.Output())
		case <-ctx.Done():
			return 0, fmt.Errorf("%s not serving on %s (last: status %d, %v): %w", p.Spec.Name, p.Addr, status, err, context.Cause(ctx))
		case <-time.After(poll):
		}
	}
}

// StartServing starts spec on a free address and waits (a minute at most,
// polling every 20 ms) until GET path answers 200. If it does not, the
// server is stopped and the error says why.
func StartServing(ctx context.Context, spec Spec, path string) (*Process, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	p, err := Start(spec, addr)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, err := p.WaitServing(wctx, path, 20*time.Millisecond); err != nil {
		p.Stop(10 * time.Second)
		return nil, err
	}
	return p, nil
}

// get sends req on a new connection and returns the response's status.
func get(ctx context.Context, d *net.Dialer, addr string, req []byte) (int, error) {
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := c.Write(req); err != nil {
		return 0, err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, err
	}
	var status int
	if _, err := fmt.Sscanf(line, "HTTP/1.1 %d", &status); err != nil {
		return 0, fmt.Errorf("status line %q: %w", line, err)
	}
	return status, nil
}

// Stop ends the server: SIGTERM to its pid, then SIGKILL if it has not
// exited within grace. Children it leaves behind (brood's must not
// outlive their master, but a benchmark should not trust that) are
// SIGKILLed by pid. It returns an error if anything had to be killed or
// survived.
func (p *Process) Stop(grace time.Duration) error {
	type kid struct {
		pid   int
		start int64
	}
	var kids []kid
	for _, pid := range Children(p.PID()) {
		if s, err := readStat(pid); err == nil {
			kids = append(kids, kid{pid, s.startTicks})
		}
	}
	// the same pid and start time: the child, not a newcomer reusing its pid
	running := func(k kid) bool {
		s, err := readStat(k.pid)
		return err == nil && s.startTicks == k.start && s.state != 'Z' && s.state != 'X'
	}
	var errs []error
	select {
	case <-p.exited:
	default:
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(grace):
			errs = append(errs, fmt.Errorf("%s (pid %d) still running %s after SIGTERM; killed", p.Spec.Name, p.PID(), grace))
			p.cmd.Process.Kill()
			<-p.exited
		}
	}
	// A child is reparented when its master exits, so look for the pids
	// found before rather than for children of the master.
	deadline := time.Now().Add(2 * time.Second)
	for _, k := range kids {
		for running(k) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if running(k) {
			errs = append(errs, fmt.Errorf("%s child pid %d outlived its master; killed", p.Spec.Name, k.pid))
			syscall.Kill(k.pid, syscall.SIGKILL)
		}
	}
	return errors.Join(errs...)
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
