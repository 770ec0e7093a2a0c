//go:build !linux

package proc

import (
	"errors"
	"runtime"
	"syscall"
)

// ChildAttr is empty where the platform has no parent-death signal; children
// still exit when their channel to the master reaches end of file.
func ChildAttr() *syscall.SysProcAttr { return nil }

// SetName is unavailable on this platform.
func SetName(string) {}

// CPUs is the number of CPUs this process may use.
func CPUs() int { return runtime.NumCPU() }

// RSS is unavailable on this platform.
func RSS(int) (int64, error) { return 0, errors.New("rss: not available on " + runtime.GOOS) }
