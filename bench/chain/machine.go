package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// This machine is shared: other people's builds and tests land on the same
// two cores. Each run waits for a quiet machine first and measures how much
// CPU went to anything but the cluster under load and this program; a round
// where that was high is reported as noisy and left out of the quiet median.

const ticksPerSecond = 100 // USER_HZ, fixed by the Linux ABI

// machineBusy returns the busy (non-idle, non-iowait) clock ticks of all
// CPUs since boot, from /proc/stat.
func machineBusy() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var busy int64
	for i, s := range f[1:min(len(f), 9)] { // guest time is already in user
		if i != 3 && i != 4 {
			v, _ := strconv.ParseInt(s, 10, 64)
			busy += v
		}
	}
	return busy
}

// waitQuiet waits, at most limit, until fewer than maxBusy cores were busy
// over a 300ms window; it reports whether that happened.
func waitQuiet(maxBusy float64, limit time.Duration) bool {
	end := time.Now().Add(limit)
	for {
		b0, t0 := machineBusy(), time.Now()
		time.Sleep(300 * time.Millisecond)
		if float64(machineBusy()-b0)/ticksPerSecond/time.Since(t0).Seconds() <= maxBusy {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// treeTicks is the user+system CPU time used so far by pid and its
// children (one level: a brood master's agent and workers).
func treeTicks(pid int) int64 {
	t, _ := procTicks(pid)
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ticks, ppid := procTicks(c); ppid == pid {
			t += ticks
		}
	}
	return t
}

// procTicks returns utime+stime and the parent of pid from /proc/PID/stat.
func procTicks(pid int) (ticks int64, ppid int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	// The command name may hold spaces ("chain: worker 1"): split after ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, 0
	}
	// f[0] is field 3 (state); field n is f[n-3].
	pp, _ := strconv.Atoi(f[1])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s, pp
}
