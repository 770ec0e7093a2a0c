package metrics

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// saveEvery is how often the aggregator saves its state when it changed:
// an agent that is killed outright leaves a state at most this old, and
// its successor carries on from it.
const saveEvery = 5 * time.Second

// defaultStateFile is where the agents of one master hand the carried
// values to one another: a file named after the master's pid, in the
// user's runtime directory.
func defaultStateFile() string {
	dir := os.Getenv("XDG_RUNTIME_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	return filepath.Join(dir, statePrefix+strconv.Itoa(os.Getppid())+stateSuffix)
}

const statePrefix, stateSuffix = "brood-metrics-", ".state"

// removeStaleStates removes the state files of masters that are gone.
func removeStaleStates(path string) {
	dir := filepath.Dir(path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, statePrefix) || !strings.HasSuffix(name, stateSuffix) {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, statePrefix), stateSuffix))
		if err == nil && !processAlive(pid) {
			os.Remove(filepath.Join(dir, name))
		}
	}
}

// loadState restores the state a previous agent saved.
func (a *Aggregator) loadState() {
	if a.stateFile == "" {
		return
	}
	b, err := os.ReadFile(a.stateFile)
	if errors.Is(err, fs.ErrNotExist) {
		removeStaleStates(a.stateFile)
		return
	}
	if err == nil {
		// The restored pids get a full grace from now: their last reports
		// went to the previous agent, seconds ago, and they are live until
		// the membership says otherwise.
		err = a.m.UnmarshalState(b, a.now())
	}
	if err != nil {
		a.log.Warn("metrics: cannot restore the previous agent's state; counters of replaced workers restart from the live ones", "file", a.stateFile, "err", err)
		return
	}
	// The previous agent's own values are carried like a replaced worker's.
	for _, p := range a.m.Procs() {
		if p.Slot == AgentSlot && p.PID != os.Getpid() {
			a.m.Retire(p.Slot, p.PID)
		}
	}
}

// saveState writes the state atomically if it changed since the last save
// (or always, with force): marshalled under a.mu, written outside it.
func (a *Aggregator) saveState(force bool) {
	if a.stateFile == "" {
		return
	}
	a.saveMu.Lock()
	defer a.saveMu.Unlock()
	a.mu.Lock()
	if !a.dirty && !force {
		a.mu.Unlock()
		return
	}
	b, err := a.m.MarshalState()
	a.dirty = false
	a.mu.Unlock()
	if err == nil {
		tmp := a.stateFile + ".tmp"
		if err = os.WriteFile(tmp, b, 0o600); err == nil {
			err = os.Rename(tmp, a.stateFile)
		}
	}
	if err != nil {
		a.mu.Lock()
		a.dirty = true // try again at the next tick
		a.mu.Unlock()
		a.log.Warn("metrics: cannot save state for the next agent", "file", a.stateFile, "err", fmt.Errorf("save: %w", err))
	}
}
