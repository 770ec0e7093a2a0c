package boltstore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// An append that the kernel holds longer than slowAppend turns the log to
// the ordinary system call for plainFor; then the raw call again. Each
// append's frame is in the file either way.
func TestASlowAppendTurnsToThePlainCall(t *testing.T) {
	l, err := openLog(filepath.Join(t.TempDir(), "store.db.log"), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.f.Close()
	l.raw = true // whatever the test's filesystem
	clock := time.Unix(1e9, 0)
	var step time.Duration // how long each append takes
	l.now = func() time.Time { clock = clock.Add(step); return clock }
	frame := appendPut(startFrame(nil), "k", []byte("v"))
	appendIt := func() {
		t.Helper()
		if err := l.append(frame); err != nil {
			t.Fatal(err)
		}
	}

	appendIt()
	if !l.plainUntil.IsZero() {
		t.Fatalf("a quick append turned the log to the plain call until %v", l.plainUntil)
	}
	step = 2 * slowAppend
	appendIt()
	until := l.plainUntil
	if want := clock.Add(plainFor); !until.Equal(want) {
		t.Fatalf("after a %v append: plain until %v; want %v", step, until, want)
	}
	// The plain call is not timed: it does not put the window off.
	appendIt()
	if !l.plainUntil.Equal(until) {
		t.Fatalf("an append in the window moved it from %v to %v", until, l.plainUntil)
	}
	clock = until
	step = 0
	appendIt()
	if !l.plainUntil.Equal(until) {
		t.Fatalf("a quick raw append after the window moved it to %v", l.plainUntil)
	}

	data, err := os.ReadFile(l.path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := data[len(logHeader):], bytes.Repeat(frame, 4); !bytes.Equal(got, want) {
		t.Fatalf("the log holds %d bytes after its header; want 4 frames, %d", len(got), len(want))
	}
}

// A raw append that fails says which file and why, as os.File's would.
func TestAFailedRawAppendNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db.log")
	if err := os.WriteFile(path, logHeader, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path) // read-only: pwrite fails with EBADF
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l := &wal{f: f, path: path, size: int64(len(logHeader)), raw: true, now: time.Now}
	err = l.append(appendPut(startFrame(nil), "k", []byte("v")))
	var pe *os.PathError
	if !errors.As(err, &pe) || !errors.Is(err, syscall.EBADF) || !strings.Contains(err.Error(), path) {
		t.Fatalf("append to a read-only log: %v; want a PathError naming %s with EBADF", err, path)
	}
}

// Appends take the raw call on local filesystems only: on NFS, SMB or FUSE
// a write can wait for a server, and a raw one would stop the agent.
func TestRawAppendsOnlyOnLocalFilesystems(t *testing.T) {
	for _, c := range []struct {
		name  string
		magic int64
		raw   bool
	}{
		{"ext4", 0xef53, true}, {"xfs", 0x58465342, true}, {"btrfs", 0x9123683e, true}, {"tmpfs", 0x01021994, true},
		{"overlay", 0x794c7630, true}, {"zfs", 0x2fc12fc1, true},
		{"nfs", 0x6969, false}, {"smb2", 0xfe534d42, false}, {"cifs", 0xff534d42, false}, {"fuse", 0x65735546, false}, {"unknown", 0x1234, false},
	} {
		if got := localFS(c.magic); got != c.raw {
			t.Errorf("%s (%#x): raw appends %v; want %v", c.name, c.magic, got, c.raw)
		}
	}
	// This machine's temporary directory: the log opened there decides by
	// its filesystem's type.
	dir := t.TempDir()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	l, err := openLog(filepath.Join(dir, "store.db.log"), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.f.Close()
	if want := localFS(int64(st.Type)); l.raw != want {
		t.Fatalf("a log on a filesystem of type %#x: raw appends %v; want %v", st.Type, l.raw, want)
	}
}
