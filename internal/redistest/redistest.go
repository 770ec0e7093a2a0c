package redistest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Server is a running redis-server.
type Server struct {
	Addr string // 127.0.0.1:port
	t    testing.TB
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts a redis-server that keeps nothing on disk.
func Start(t testing.TB) *Server {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("BROOD_CI_REQUIRE_TOOLS") == "1" {
			t.Fatalf("redis-server not found and BROOD_CI_REQUIRE_TOOLS=1: apt-get install -y redis-server")
		}
		t.Skip("redis-server not found: apt-get install -y redis-server to run this test")
	}
	s := &Server{t: t}
	s.Addr = freeAddr(t)
	s.start(path)
	t.Cleanup(s.Stop)
	return s
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (s *Server) start(path string) {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	s.cmd = exec.Command(path, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.t.TempDir(), "--loglevel", "warning")
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	s.cmd.Stdout, s.cmd.Stderr = &out, &out
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(s.cmd, s.done)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
			c.Close()
			return
		}
		select {
		case <-s.done:
			s.t.Fatalf("redis-server on %s exited at start: %s", s.Addr, out.String())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %s not accepting after 10s", s.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// URL is the server's redis:// URL for database db.
func (s *Server) URL(db int) string { return "redis://" + s.Addr + "/" + strconv.Itoa(db) }

// Stop kills the server and waits for it; Restart starts it again on the
// same address.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart starts a stopped server again, empty, on the same address.
func (s *Server) Restart() {
	s.t.Helper()
	path, _ := exec.LookPath("redis-server")
	s.start(path)
}

func (s *Server) String() string { return fmt.Sprintf("redis-server on %s", s.Addr) }

// Pause stops the server with SIGSTOP: connections stay open and
// commands hang, as with a partition; Resume continues it.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	if s.cmd == nil {
		s.t.Fatal("redistest: server not running")
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("redistest: %v: %v", sig, err)
	}
}
