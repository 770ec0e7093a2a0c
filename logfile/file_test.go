package logfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReopenAfterRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintln(f, "one")
	if err := os.Rename(path, path+".old"); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "two") // still the old file until Reopen
	if err := f.Reopen(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "three")
	if got, want := readFile(t, path+".old"), "one\ntwo\n"; got != want {
		t.Errorf("old file: got %q, want %q", got, want)
	}
	if got, want := readFile(t, path), "three\n"; got != want {
		t.Errorf("new file: got %q, want %q", got, want)
	}
}

func TestOpenAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	if err := os.WriteFile(path, []byte("before\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "after")
	f.Close()
	if got, want := readFile(t, path), "before\nafter\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestOpenMissingDir(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "nope", "app.log"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got %v, want an error wrapping fs.ErrNotExist", err)
	}
}

// A Reopen that cannot open the path must leave the old file in use, so
// nothing written meanwhile is lost.
func TestReopenFailureKeepsOldFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := Open(filepath.Join(dir, "app.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	moved := dir + ".moved"
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	if err := f.Reopen(); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Reopen: got %v, want an error wrapping fs.ErrNotExist", err)
	}
	if _, err := fmt.Fprintln(f, "kept"); err != nil {
		t.Fatal(err)
	}
	if got, want := readFile(t, filepath.Join(moved, "app.log")), "kept\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestCloseTwiceAndWriteAfterClose(t *testing.T) {
	f, err := Open(filepath.Join(t.TempDir(), "app.log"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
	if _, err := f.Write([]byte("x\n")); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Write after Close: got %v, want fs.ErrClosed", err)
	}
	if err := f.Reopen(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Reopen after Close: got %v, want fs.ErrClosed", err)
	}
}

// Goroutines of one process writing while another reopens: the race
// detector watches the swap, and every line must land once.
func TestConcurrentWritesAndReopens(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	const writers, lines = 4, 2000
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for n := range lines {
				if _, err := f.Write(testLine(0, g, n)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	rotations := 0
loop:
	for rotations < 1000 {
		select {
		case <-done:
			break loop
		default:
		}
		if err := os.Rename(path, fmt.Sprintf("%s.%04d", path, rotations)); err != nil {
			t.Fatal(err)
		}
		if err := f.Reopen(); err != nil {
			t.Fatal(err)
		}
		rotations++
	}
	<-done
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	entries, _ := os.ReadDir(dir)
	for _, de := range entries {
		readLines(t, filepath.Join(dir, de.Name()), func(l []byte) { seen[string(l)]++ })
	}
	for g := range writers {
		for n := range lines {
			l := strings.TrimSuffix(string(testLine(0, g, n)), "\n")
			if seen[l] != 1 {
				t.Fatalf("line g=%d n=%d found %d times, want once", g, n, seen[l])
			}
		}
	}
	t.Logf("%d reopens", rotations)
}
