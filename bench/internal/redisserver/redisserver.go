package redisserver

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/broodhq/brood/bench/internal/target"
)

// Server is a started redis-server.
type Server struct {
	Addr    string // 127.0.0.1:port it listens on
	Version string // as redis-server --version prints it, e.g. "v=7.0.15"
	cmd     *exec.Cmd
	done    chan struct{}
}

// Start starts a redis-server on a free loopback port with persistence off
// and waits (up to 10s) until it accepts connections. Its directory is a
// temporary one named after prefix (the benchmark's name), removed when it
// exits. It is killed if this process dies.
func Start(prefix string) (*Server, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found: apt-get install -y redis-server")
	}
	addr, err := target.FreeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	dir, err := os.MkdirTemp("", prefix+"-redis-")
	if err != nil {
		return nil, err
	}
	v, _ := exec.Command(path, "--version").Output()
	rs := &Server{Addr: addr, Version: strings.TrimSpace(string(bytes.Fields(v)[2])), done: make(chan struct{})}
	rs.cmd = exec.Command(path, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--loglevel", "warning")
	rs.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := rs.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { rs.cmd.Wait(); os.RemoveAll(dir); close(rs.done) }()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return rs, nil
		}
		if time.Now().After(deadline) {
			rs.Stop()
			return nil, fmt.Errorf("redis-server on %s not accepting after 10s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// PID is the redis-server's process id, for counting its CPU time.
func (rs *Server) PID() int { return rs.cmd.Process.Pid }

// Stop ends the server with SIGTERM, SIGKILL after 5s, and waits for it.
func (rs *Server) Stop() {
	rs.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-rs.done:
	case <-time.After(5 * time.Second):
		rs.cmd.Process.Kill()
		<-rs.done
	}
}
