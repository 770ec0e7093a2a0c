package child

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/broodhq/brood/internal/proc"
	"github.com/broodhq/brood/internal/protocol"
)

// ErrNoMaster is returned in a process that has BROOD_ROLE set but was not
// started by a brood master.
var ErrNoMaster = errors.New("not started by a brood master")

// Env is what the master told a child through its environment
// (protocol.Env*), read in one place: FromEnv.
type Env struct {
	Role       string   // "agent" or "worker"; "" in the master
	Slot       int      // a worker's slot, from 1; 0 in the agent
	MasterPID  int      // 0 when unset or not a number
	Sockets    []string // the slot sockets a worker serves, its own first
	Generation int
}

// FromEnv reads the child environment with getenv (os.Getenv).
func FromEnv(getenv func(string) string) Env {
	e := Env{Role: getenv(protocol.EnvRole)}
	e.Slot, _ = strconv.Atoi(getenv(protocol.EnvSlot))
	e.MasterPID, _ = strconv.Atoi(getenv(protocol.EnvMaster))
	e.Generation, _ = strconv.Atoi(getenv(protocol.EnvGeneration))
	if s := getenv(protocol.EnvSockets); s != "" {
		e.Sockets = strings.Split(s, ",")
	} else if e.Slot > 0 {
		e.Sockets = []string{strconv.Itoa(e.Slot)}
	}
	return e
}

// CheckMaster refuses to run a child role in a process that a master did
// not start: someone copied BROOD_ROLE into a shell, or a master died
// between starting us and our first instruction.
func (e Env) CheckMaster() error {
	if e.MasterPID == 0 || e.MasterPID != os.Getppid() || !proc.IsSocket(protocol.FDChannel, proc.StreamSocket) {
		return fmt.Errorf("%w: BROOD_ROLE=%s is set, but this process has no brood master behind it (the master sets BROOD_ROLE for the processes it starts): unset BROOD_ROLE to start a master", ErrNoMaster, e.Role)
	}
	return nil
}

// CallHook runs a WithAgent or WithApp hook, turning a panic (agent.Every
// and app.App.Every panic on a wrong setup) into an error, so the master
// reports the cause instead of an exit status.
func CallHook(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return fn()
}
