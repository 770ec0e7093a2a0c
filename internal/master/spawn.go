package master

import (
	"os"
	"os/exec"
	"runtime"

	"github.com/broodhq/brood/internal/proc"
)

// spawner starts every child from one OS thread that it never releases.
// Linux's parent-death signal fires when the *thread* that forked a child
// exits (golang/go#27505), and the Go runtime retires idle threads, so
// children started from arbitrary goroutines could be killed at random. The
// thread lives until stop, which the master calls after its last child has
// exited.
type spawner struct {
	reqs chan spawnReq
	done chan struct{}
}

type spawnReq struct {
	cmd *exec.Cmd
	err chan error
}

func startSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		runtime.LockOSThread() // never unlocked: see the type's comment
		for r := range s.reqs {
			r.err <- r.cmd.Start()
		}
	}()
	return s
}

func (s *spawner) start(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	s.reqs <- spawnReq{cmd, errc}
	return <-errc
}

func (s *spawner) stop() {
	close(s.reqs)
	<-s.done
}

// Starter starts the master's children. The master runs them through
// execStarter; tests of the supervisor's decisions give it a fake that
// starts no process.
type Starter interface {
	Start(Spec) (Process, error)
}

// Spec is one child to start: what exec.Cmd needs.
type Spec struct {
	Path  string
	Args  []string // Args[0] is the process title
	Env   []string
	Files []*os.File // inherited from fd 3 on: the channel, then sockets
}

// Process is a started child.
type Process interface {
	PID() int
	// Wait blocks until the process has exited and been reaped.
	Wait() error
	Signal(os.Signal) error
	Kill() error
}

// execStarter starts real processes, from the spawner's thread.
type execStarter struct{ spawn *spawner }

func (s execStarter) Start(sp Spec) (Process, error) {
	cmd := &exec.Cmd{
		Path:        sp.Path,
		Args:        sp.Args,
		Env:         sp.Env,
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
		ExtraFiles:  sp.Files,
		SysProcAttr: proc.ChildAttr(),
	}
	if err := s.spawn.start(cmd); err != nil {
		return nil, err
	}
	return execProcess{cmd}, nil
}

type execProcess struct{ cmd *exec.Cmd }

func (p execProcess) PID() int                 { return p.cmd.Process.Pid }
func (p execProcess) Wait() error              { return p.cmd.Wait() }
func (p execProcess) Signal(s os.Signal) error { return p.cmd.Process.Signal(s) }
func (p execProcess) Kill() error              { return p.cmd.Process.Kill() }
