package boltstore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/broodhq/brood/store"
	"github.com/broodhq/brood/store/boltstore"
)

// The child of TestSIGKILLMidWrite: writes as fast as it can to the store
// at $BOLTSTORE_CRASH_PATH, its log never checkpointed, printing each
// acknowledged write, until it is killed.
func TestCrashChild(t *testing.T) {
	path := os.Getenv("BOLTSTORE_CRASH_PATH")
	if path == "" {
		t.Skip("the child of TestSIGKILLMidWrite")
	}
	s, err := boltstore.Open(path, boltstore.Options{SweepEvery: time.Hour})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	ctx := context.Background()
	out := bufio.NewWriter(os.Stdout)
	value := []byte(strings.Repeat("v", 3000)) // frames that take more than one page to write
	for i := 0; ; i++ {
		if err := s.Set(ctx, fmt.Sprint("k", i), value, 0); err != nil {
			fmt.Fprintln(out, "set:", err)
			out.Flush()
			os.Exit(1)
		}
		n, err := s.Incr(ctx, "n", 1, 0)
		if err != nil {
			fmt.Fprintln(out, "incr:", err)
			out.Flush()
			os.Exit(1)
		}
		fmt.Fprintln(out, i, n)
		out.Flush()
	}
}

// crash runs TestCrashChild on path, SIGKILLs it once it has acknowledged
// some writes, and returns the last write it acknowledged (its index, and
// the counter then).
func crash(t *testing.T, path string) (last, n int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "BOLTSTORE_CRASH_PATH="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	last = -1
	for lines.Scan() {
		f := strings.Fields(lines.Text())
		if len(f) != 2 {
			t.Fatalf("child: %s", lines.Text())
		}
		last, _ = strconv.Atoi(f[0])
		n, _ = strconv.Atoi(f[1])
		if last == 300 {
			cmd.Process.Signal(syscall.SIGKILL) // mid-write: it does not wait
		}
	}
	cmd.Wait()
	if last < 300 {
		t.Fatalf("the child acknowledged %d writes before it died; want it killed after 300", last+1)
	}
	if fi, err := os.Stat(path + ".log"); err != nil || fi.Size() < 300*3000 {
		t.Fatalf("the log after the crash: %v, %v; want it holding the writes (no checkpoint ran)", fi, err)
	}
	return last, n
}

// checkAcked checks that every write crash saw acknowledged is in the
// store at path.
func checkAcked(t *testing.T, path string, last, n int) {
	t.Helper()
	s := open(t, path, boltstore.Options{})
	ctx := context.Background()
	for i := range last + 1 {
		if v, ok, err := s.Get(ctx, fmt.Sprint("k", i)); err != nil || !ok || len(v) != 3000 {
			t.Fatalf("k%d, acknowledged before the SIGKILL: %d bytes, %v, %v", i, len(v), ok, err)
		}
	}
	got, err := s.Incr(ctx, "n", 0, 0)
	if err != nil || got < int64(n) || got > int64(n)+1 {
		t.Fatalf("counter after the crash = %d, %v; want %d acknowledged (or one more, whose answer was lost)", got, err, n)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// Writes acknowledged before a SIGKILL, which are in the log only, are in
// the store when it opens again.
func TestSIGKILLMidWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	last, n := crash(t, path)
	checkAcked(t, path, last, n)
	// Opened and closed again: the log was checkpointed into the
	// database and emptied.
	if fi, err := os.Stat(path + ".log"); err != nil || fi.Size() > 100 {
		t.Fatalf("the log after a clean close: %v, %v; want only its header", fi, err)
	}
}

// A log whose last frame is cut short, or followed by garbage (a write the
// process died in), opens with every whole frame, and the tail is cut off
// so that later frames are not written after it.
func TestTornTail(t *testing.T) {
	for _, tear := range []string{"cut", "garbage"} {
		t.Run(tear, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "store.db")
			last, n := crash(t, path)
			log := path + ".log"
			fi, err := os.Stat(log)
			if err != nil {
				t.Fatal(err)
			}
			switch tear {
			case "cut":
				// Into the last frame (Set k<last>, or Incr n).
				if err := os.Truncate(log, fi.Size()-5); err != nil {
					t.Fatal(err)
				}
				last-- // either k<last> or its counter is gone
				n--
			case "garbage":
				f, _ := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
				f.Write([]byte("\x10\x00\x00\x00garbage that is no frame"))
				f.Close()
				s, err := boltstore.Open(path, boltstore.Options{SweepEvery: time.Hour})
				if err != nil {
					t.Fatal(err)
				}
				after, _ := os.Stat(log)
				s.Close()
				if after.Size() != fi.Size() {
					t.Fatalf("log of %d bytes with garbage after them is %d bytes once opened; want the garbage cut", fi.Size(), after.Size())
				}
			}
			checkAcked(t, path, last, n)
		})
	}
}

// A log file that is not one fails Open with ErrForeign, naming it.
func TestForeignLogIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	os.WriteFile(path+".log", []byte(strings.Repeat("not a log\n", 10)), 0o600)
	_, err := boltstore.Open(path, boltstore.Options{})
	if !errors.Is(err, boltstore.ErrForeign) || !strings.Contains(err.Error(), path+".log") || !strings.Contains(err.Error(), "move the file away") {
		t.Fatalf("Open with a foreign log: %v; want ErrForeign naming %s.log and what to do", err, path)
	}
	// The database is not left locked by the failed Open.
	os.Remove(path + ".log")
	open(t, path, boltstore.Options{LockTimeout: 200 * time.Millisecond})
}

// Pending changes reach the database at a checkpoint (here the one every
// SweepEvery), and what the log held is then cut.
func TestCheckpointEmptiesTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s := open(t, path, boltstore.Options{SweepEvery: 20 * time.Millisecond})
	ctx := context.Background()
	for i := range 100 {
		s.Set(ctx, fmt.Sprint("k", i), []byte("v"), 0)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		fi, err := os.Stat(path + ".log")
		if err == nil && fi.Size() < 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log after checkpoints: %v, %v; want it emptied", fi, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if items, err := s.List(ctx, "k", "", 1000); err != nil || len(items) != 100 {
		t.Fatalf("List after a checkpoint: %d items, %v; want 100", len(items), err)
	}
}

// List and Lookup see the database's keys and the pending changes over
// them as one store: keys only in the file, only pending, changed or
// deleted while pending; in a Group, its own changes over both.
func TestListMergesPendingChangesOverTheFile(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "store.db"), boltstore.Options{SweepEvery: time.Hour})
	ctx := context.Background()
	for _, k := range []string{"p/a", "p/b", "p/c", "p/d", "q/x"} {
		s.Set(ctx, k, []byte("file"), 0)
	}
	if _, _, err := s.Stats(); err != nil { // a checkpoint: these are in the file now
		t.Fatal(err)
	}
	s.Set(ctx, "p/b", []byte("pending"), 0)  // changed
	s.Delete(ctx, "p/c")                     // deleted
	s.Set(ctx, "p/bb", []byte("pending"), 0) // new, between file keys
	s.Set(ctx, "p/e", []byte("pending"), 0)  // new, after them
	s.Set(ctx, "p/0", []byte("pending"), 0)  // new, before them
	s.Set(ctx, "p/gone", []byte("pending"), time.Millisecond)
	time.Sleep(5 * time.Millisecond) // p/gone expired while pending
	want := "p/0=pending p/a=file p/b=pending p/bb=pending p/d=file p/e=pending"
	if got := listing(t, s, "p/", "", 100); got != want {
		t.Fatalf("List = %s; want %s", got, want)
	}
	// Pages: after a key, and a limit, across both.
	if got := listing(t, s, "p/", "p/b", 2); got != "p/bb=pending p/d=file" {
		t.Fatalf("List after p/b, 2 = %s; want p/bb and p/d", got)
	}
	if v, ok, _ := s.Get(ctx, "p/c"); ok {
		t.Fatalf("Get of a key deleted while pending = %q; want none", v)
	}
	err := s.Group(ctx, func(w store.Store) {
		w.Set(ctx, "p/a", []byte("group"), 0)
		w.Delete(ctx, "p/bb")
		w.Set(ctx, "p/c", []byte("group"), 0)
		want := "p/0=pending p/a=group p/b=pending p/c=group p/d=file p/e=pending"
		items, err := w.List(ctx, "p/", "", 100)
		if got := render(items); err != nil || got != want {
			t.Errorf("List in a group = %s, %v; want %s", got, err, want)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	// And the same once everything is in the file.
	s.Stats()
	if got := listing(t, s, "p/", "", 100); got != "p/0=pending p/a=group p/b=pending p/c=group p/d=file p/e=pending" {
		t.Fatalf("List after a checkpoint = %s", got)
	}
}

func listing(t *testing.T, s store.Store, prefix, after string, limit int) string {
	t.Helper()
	items, err := s.List(context.Background(), prefix, after, limit)
	if err != nil {
		t.Fatal(err)
	}
	return render(items)
}

func render(items []store.Item) string {
	var b strings.Builder
	for i, it := range items {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%s", it.Key, it.Value)
	}
	return b.String()
}
