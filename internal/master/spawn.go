package master

import (
	"os/exec"
	"runtime"
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
