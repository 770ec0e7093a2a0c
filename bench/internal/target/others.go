package target

import (
	"os"
	"strconv"
	"time"
)

// Others is a snapshot of the CPU time of every user process on the
// machine, to tell afterwards how much CPU other work took during a run.
type Others map[procKey]int64 // pid and start → utime+stime

type procKey struct {
	pid   int
	start int64
}

// SnapshotOthers reads every process's CPU time so far, kernel threads
// excepted.
func SnapshotOthers() Others {
	o := Others{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return o
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		s, err := readStat(pid)
		if err != nil || s.ppid == 2 || pid == 2 { // kthreadd's children
			continue
		}
		o[procKey{pid, s.startTicks}] = s.utime + s.stime
	}
	return o
}

// OtherCores returns the cores, on average over wall, that processes other
// than exclude used between before and after: a lower bound, since a
// process that ended during the run is missed (its parent's cutime would
// count its whole life, not its share of the run, so it is not used).
func OtherCores(before, after Others, exclude []int, wall time.Duration) float64 {
	skip := make(map[int]bool, len(exclude))
	for _, pid := range exclude {
		skip[pid] = true
	}
	var ticks int64
	for k, t := range after {
		if skip[k.pid] {
			continue
		}
		ticks += t - before[k] // zero before: started during the run
	}
	return Cores(ticks, wall)
}
