package reuseport

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// fdFlags reads the open file description's flags of fd in process pid, the
// way the kernel reports them.
func fdFlags(t *testing.T, pid int, fd uintptr) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%d", pid, fd))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "flags:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 8, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no flags in fdinfo of fd %d", fd)
	return 0
}

const oNonblock = 0o4000

// sysfd is f's descriptor, read without File.Fd, which can change the flags
// this test is about.
func sysfd(t *testing.T, f *os.File) uintptr {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd uintptr
	if err := rc.Control(func(s uintptr) { fd = s }); err != nil {
		t.Fatal(err)
	}
	return fd
}

// Workers share the slot socket's open file description with the master:
// starting a child that inherits it must not make it blocking for every
// other holder (a draining worker's accept4 then blocks, and so does its
// listener's Close).
func TestStartingAChildLeavesTheSocketNonBlocking(t *testing.T) {
	g, err := Bind(context.Background(), "127.0.0.1:0", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	f := g.File(1)
	if fdFlags(t, os.Getpid(), sysfd(t, f))&oNonblock == 0 {
		t.Fatal("the slot socket is blocking before any child started")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.ExtraFiles = []*os.File{f}
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if fdFlags(t, os.Getpid(), sysfd(t, f))&oNonblock == 0 {
		t.Error("starting a child with the slot socket made it blocking for every process holding it")
	}
}
