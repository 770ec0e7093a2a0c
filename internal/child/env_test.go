package child

import (
	"errors"
	"slices"
	"testing"
)

func TestFromEnv(t *testing.T) {
	env := map[string]string{
		"BROOD_ROLE": "worker", "BROOD_SLOT": "3", "BROOD_MASTER_PID": "42",
		"BROOD_SOCKETS": "3,5", "BROOD_GENERATION": "2",
	}
	e := FromEnv(func(k string) string { return env[k] })
	if e.Role != "worker" || e.Slot != 3 || e.MasterPID != 42 || e.Generation != 2 || !slices.Equal(e.Sockets, []string{"3", "5"}) {
		t.Errorf("got %+v", e)
	}
	delete(env, "BROOD_SOCKETS")
	if e := FromEnv(func(k string) string { return env[k] }); !slices.Equal(e.Sockets, []string{"3"}) {
		t.Errorf("without BROOD_SOCKETS a worker serves its own slot's socket; got %v", e.Sockets)
	}
	// Not started by this process's parent: refused.
	if err := e.CheckMaster(); !errors.Is(err, ErrNoMaster) {
		t.Errorf("CheckMaster with a stranger's pid: %v; want ErrNoMaster", err)
	}
}

func TestCallHookTurnsAPanicIntoAnError(t *testing.T) {
	err := CallHook(func() error { panic("wrong setup") })
	if err == nil {
		t.Fatal("no error from a panicking hook")
	}
	want := errors.New("fine")
	if err := CallHook(func() error { return want }); err != want {
		t.Errorf("got %v; want the hook's own error", err)
	}
}
