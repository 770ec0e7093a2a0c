// Command naivereload is the baseline cmd/opsbench compares brood's rolling
// reload with: the rolling restart that gunicorn's reuse_port, pm2's reload
// and prefork servers do. A supervisor runs N plain net/http children
// (default 2), each with its own SO_REUSEPORT listener on $BROOD_ADDR
// (which must name a port). On SIGHUP it replaces them one at a time: start
// a new child, wait until it listens, SIGTERM the old one, which runs
// http.Server.Shutdown (close the listener, close idle connections, finish
// in-flight requests), wait for it to exit, next. SIGTERM or SIGINT stops
// everything.
//
// Closing a SO_REUSEPORT listener resets the connections waiting in its
// accept queue, and closing an idle keep-alive connection races the
// client's next request on it: that is what this baseline measures.
//
// It logs JSON lines on stderr with the messages brood uses for the same
// steps ("ready on ...", "replacing", "started", "stopped", "reload
// complete"), so cmd/opsbench reads both the same way.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	envChild = "NAIVE_CHILD" // set in the children: the slot number
	stopWait = 15 * time.Second
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("pid", os.Getpid())
	addr := os.Getenv("BROOD_ADDR")
	var err error
	if slot := os.Getenv(envChild); slot != "" {
		err = child(log.With("role", "child", "slot", slot), addr)
	} else {
		err = supervise(log.With("role", "supervisor"), addr)
	}
	if err != nil {
		log.Error("exiting", "err", err)
		os.Exit(1)
	}
}

// child serves until SIGTERM, then shuts down the way net/http documents.
func child(log *slog.Logger, addr string) error {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		return errors.Join(err, serr)
	}}
	// A plain TCP socket, as gunicorn and pm2 create (Go's default is
	// Multipath TCP, which falls back to TCP for these clients anyway).
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "Hello, World!")
	})
	pid := os.Getpid()
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		// ?sleep=20ms keeps requests in flight, as in cmd/opsapp.
		if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil && d > 0 {
			time.Sleep(min(d, time.Second))
		}
		fmt.Fprintf(w, "worker naive, pid %d\n", pid)
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	// The socket is in the reuseport group from here on: the kernel
	// already queues connections for it.
	fmt.Println("listening")
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-term:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func supervise(log *slog.Logger, addr string) error {
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "0" || port == "" {
		return fmt.Errorf("$BROOD_ADDR %q: want host:port with a fixed port", addr)
	}
	n := 2
	if s := os.Getenv("NAIVE_WORKERS"); s != "" {
		if v, err := strconv.Atoi(s); err == nil && v >= 1 && v <= 64 {
			n = v
		}
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	start := time.Now()
	kids := make([]*proc, n)
	stopAll := func() {
		for _, k := range kids {
			if k != nil {
				stop(log, k)
			}
		}
	}
	for i := range kids {
		if kids[i], err = spawn(log, self, i+1); err != nil {
			stopAll()
			return err
		}
	}
	log.Info(fmt.Sprintf("ready on http://%s (%d workers, %d ms)", addr, n, time.Since(start).Milliseconds()))
	gen := 1
	for sig := range sigs {
		if sig != syscall.SIGHUP {
			log.Info("stopping", "signal", sig.String())
			stopAll()
			log.Info("stopped")
			return nil
		}
		gen++
		log.Info("reload started", "generation", gen)
		for i, old := range kids {
			log.Info("replacing", "child", fmt.Sprintf("worker %d", i+1), "child_pid", old.cmd.Process.Pid)
			k, err := spawn(log, self, i+1)
			if err != nil {
				log.Error("reload failed", "err", err)
				break
			}
			kids[i] = k
			stop(log, old)
		}
		log.Info("reload complete", "generation", gen)
	}
	return nil
}

// spawn starts a child and waits until its socket listens.
func spawn(log *slog.Logger, self string, slot int) (*proc, error) {
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), envChild+"="+strconv.Itoa(slot))
	cmd.Stderr = os.Stderr
	// The children die with the supervisor even if it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start child %d: %w", slot, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	listening := make(chan error, 1)
	go func() {
		_, err := bufio.NewReader(out).ReadString('\n')
		listening <- err
		cmd.Wait()
		close(p.done)
	}()
	select {
	case err := <-listening:
		if err == nil {
			log.Debug("started", "child", fmt.Sprintf("worker %d", slot), "child_pid", cmd.Process.Pid)
			return p, nil
		}
		cmd.Process.Kill()
		<-p.done
		return nil, fmt.Errorf("child %d did not listen: %w", slot, err)
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-p.done
		return nil, fmt.Errorf("child %d did not listen within 10s", slot)
	}
}

// stop sends SIGTERM and waits for the exit, killing after stopWait.
func stop(log *slog.Logger, p *proc) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopWait):
		p.cmd.Process.Kill()
		<-p.done
	}
	log.Debug("stopped", "child_pid", p.cmd.Process.Pid, "status", p.cmd.ProcessState.String())
}
