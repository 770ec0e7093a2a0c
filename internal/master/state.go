package master

// childState is where a child is in its life. Status prints it as is.
type childState int

const (
	childStarting childState = iota // started, its hooks running
	childReady                      // said it is ready: serving
	childDraining                   // told to stop (or stopping on its own): finishing its work
	childExited                     // reaped
)

func (s childState) String() string {
	switch s {
	case childStarting:
		return "starting"
	case childReady:
		return "ready"
	case childDraining:
		return "draining"
	case childExited:
		return "exited"
	}
	return "unknown"
}

// slotStatus is what a slot is doing about its process.
type slotStatus int

const (
	slotEmpty      slotStatus = iota // no process and none scheduled: a new slot, or an agent between swap steps
	slotActive                       // has a process (cur), maybe with a successor starting (next)
	slotRestarting                   // its process died; a restart is scheduled
	slotSwapping                     // the agent is being stopped for its successor, which starts after it exited
	slotGivenUp                      // crashed too often: not restarted, sockets closed
	slotRetired                      // scaled away: its sockets are served by another slot, or closed
)

func (s slotStatus) String() string {
	switch s {
	case slotEmpty:
		return "empty"
	case slotActive:
		return "active"
	case slotRestarting:
		return "restarting"
	case slotSwapping:
		return "swapping"
	case slotGivenUp:
		return "given-up"
	case slotRetired:
		return "retired"
	}
	return "unknown"
}

// serving reports whether the slot counts as one of the workers: it has
// one, or will once it has restarted.
func (s slotStatus) serving() bool {
	return s == slotEmpty || s == slotActive || s == slotRestarting || s == slotSwapping
}
