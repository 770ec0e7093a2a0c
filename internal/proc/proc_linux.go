//go:build linux

package proc

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ChildAttr makes the kernel kill the child when the thread that started it
// exits. Callers must start children from one locked OS thread that lives as
// long as the master (golang/go#27505): Pdeathsig follows the parent thread,
// not the parent process.
func ChildAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// SetName sets the process's comm name (what ps -o comm and top show); the
// kernel keeps 15 bytes of it.
func SetName(name string) {
	b := append([]byte(name), 0)
	if len(b) > 16 {
		b = append(b[:15], 0)
	}
	_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&b[0])), 0, 0, 0)
}

// CPUs is the number of CPUs this process may use: the affinity mask,
// lowered by a cgroup v2 CPU quota when one is set.
func CPUs() int {
	n := runtime.NumCPU()
	if q := cgroupQuota(); q > 0 && q < n {
		n = q
	}
	return max(n, 1)
}

// cgroupQuota reads cpu.max of this process's cgroup v2: "max 100000" means
// no limit, "150000 100000" means 1.5 CPUs, rounded up to 2.
func cgroupQuota() int {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if path, ok := strings.CutPrefix(line, "0::"); ok {
			if q := readCPUMax("/sys/fs/cgroup" + path + "/cpu.max"); q > 0 {
				return q
			}
			return readCPUMax("/sys/fs/cgroup/cpu.max")
		}
	}
	return 0
}

func readCPUMax(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) != 2 || f[0] == "max" {
		return 0
	}
	quota, err1 := strconv.ParseFloat(f[0], 64)
	period, err2 := strconv.ParseFloat(f[1], 64)
	if err1 != nil || err2 != nil || period <= 0 {
		return 0
	}
	return int(math.Ceil(quota / period))
}

// RSS returns the resident set size of pid in bytes.
func RSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read rss of %d: %w", pid, err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := bytes.CutPrefix(s.Bytes(), []byte("VmRSS:")); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(rest)), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("read rss of %d: %w", pid, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("read rss of %d: no VmRSS line", pid)
}
