package target

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// stat holds the fields of /proc/PID/stat the benchmarks use.
type stat struct {
	state      byte
	ppid       int
	utime      int64 // clock ticks
	stime      int64
	startTicks int64 // since boot; with the pid, names one process
}

func readStat(pid int) (stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, err
	}
	// The command name, field 2, is in parentheses and may hold spaces
	// ("hello: worker 1"), so split after its closing parenthesis.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return stat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	// f[0] is field 3 (state); field n is f[n-3].
	num := func(n int) int64 { v, _ := strconv.ParseInt(f[n-3], 10, 64); return v }
	return stat{state: f[0][0], ppid: int(num(4)), utime: num(14), stime: num(15), startTicks: num(22)}, nil
}

// Children returns the pids whose parent is pid, found by scanning /proc.
func Children(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var kids []int
	for _, e := range ents {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, err := readStat(c); err == nil && s.ppid == pid && s.state != 'Z' {
			kids = append(kids, c)
		}
	}
	return kids
}

// Mem is one process's memory as the kernel reports it, in KiB.
type Mem struct {
	PID  int    `json:"pid"`
	Name string `json:"name"`    // argv[0], which brood sets to "NAME: role"
	RSS  int64  `json:"rss_kib"` // VmRSS from /proc/PID/status
	PSS  int64  `json:"pss_kib"` // Pss from /proc/PID/smaps_rollup: shared pages split among their users
}

// Memory reads pid's memory.
func Memory(pid int) (Mem, error) {
	m := Mem{PID: pid, Name: cmdline(pid)}
	var err error
	if m.RSS, err = field(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:"); err != nil {
		return m, err
	}
	if m.PSS, err = field(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss:"); err != nil {
		return m, err
	}
	return m, nil
}

// Tree is pid followed by its children.
func Tree(pid int) []int { return append([]int{pid}, Children(pid)...) }

// CPUTicks is the user+system CPU time the processes have used so far, in
// clock ticks (USER_HZ, 100 per second on Linux).
func CPUTicks(pids []int) int64 {
	var t int64
	for _, pid := range pids {
		if s, err := readStat(pid); err == nil {
			t += s.utime + s.stime
		}
	}
	return t
}

// TicksPerSecond is USER_HZ, fixed at 100 by the Linux ABI.
const TicksPerSecond = 100

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	name, _, _ := bytes.Cut(b, []byte{0})
	return string(name)
}

// field returns the number after name in a /proc file of "Name: N kB" lines.
func field(path, name string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, name); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s line", path, name)
}

// Machine is the CPU time the whole machine has spent so far, summed over
// its CPUs, in clock ticks, from the first line of /proc/stat.
type Machine struct {
	Busy    int64 // everything but idle and iowait
	Softirq int64 // part of Busy: on loopback, the TCP receive path
	Total   int64
}

// MachineTicks reads the machine's CPU time so far.
func MachineTicks() Machine {
	var m Machine
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return m
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return m
	}
	for i, s := range f[1:] {
		if i >= 8 { // guest time is already counted in user
			break
		}
		v, _ := strconv.ParseInt(s, 10, 64)
		m.Total += v
		if i != 3 && i != 4 { // idle, iowait
			m.Busy += v
		}
		if i == 6 {
			m.Softirq = v
		}
	}
	return m
}

// Cores converts ticks over wall time to cores busy on average.
func Cores(ticks int64, wall time.Duration) float64 {
	return float64(ticks) / TicksPerSecond / wall.Seconds()
}
