package boltstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/broodhq/brood/store"
)

// onWriter runs fn on s's writer, which owns what fn changes.
func onWriter(t *testing.T, s *Store, fn func()) {
	t.Helper()
	if _, err := s.write(context.Background(), func(*txn) result { fn(); return result{} }); err != nil {
		t.Fatal(err)
	}
}

// While checkpoints fail and the log's appends do not (the disk has room
// for small frames, not for the database to grow), writes that keep
// changing one key are refused once the log passes its bound, instead of
// the log growing without one; reads keep working, nothing acknowledged is
// lost, and writes are taken again as soon as a checkpoint succeeds.
func TestLogIsBoundedWhileCheckpointsFail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := Open(path, Options{SweepEvery: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	const bound = 1 << 20
	fault := fmt.Errorf("injected: %w", syscall.ENOSPC)
	ctx := context.Background()
	value := make([]byte, 4<<10)
	n := 0 // the last write acknowledged, in the value's first 8 bytes
	set := func() error {
		binary.BigEndian.PutUint64(value, uint64(n+1))
		err := s.Set(ctx, "k", value, 0)
		if err == nil {
			n++
		}
		return err
	}
	logSize := func() int64 {
		fi, err := os.Stat(path + ".log")
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	check := func(s *Store, when string) {
		t.Helper()
		v, ok, err := s.Get(ctx, "k")
		if err != nil || !ok || len(v) != len(value) || binary.BigEndian.Uint64(v) != uint64(n) {
			t.Fatalf("%s: Get = %d bytes, %v, %v; want write %d, the last acknowledged", when, len(v), ok, err, n)
		}
	}
	refuse := func() {
		t.Helper()
		onWriter(t, s, func() { s.refuseLogBytes = bound; s.checkpointFault = fault })
		var werr error
		for range 16 * bound / len(value) {
			if werr = set(); werr != nil {
				break
			}
		}
		if werr == nil {
			t.Fatalf("16 MiB of writes to one key, every checkpoint failing, all succeeded; want them refused past %d bytes of log", bound)
		}
		if !errors.Is(werr, store.ErrUnavailable) || !errors.Is(werr, fault) || !strings.Contains(werr.Error(), path) || !strings.Contains(werr.Error(), "make room") {
			t.Fatalf("write with the log full: %v; want store.ErrUnavailable wrapping the checkpoint's error, naming the file and what to do", werr)
		}
		size := logSize()
		if size > 8*bound {
			// A checkpoint fails every 5ms, past 1 MiB refusing writes.
			t.Fatalf("log of %d bytes when writes were refused; want them refused soon after %d", size, bound)
		}
		for range 100 {
			if err := set(); err == nil {
				t.Fatal("a write after the refusal succeeded, checkpoints still failing")
			}
		}
		if after := logSize(); after != size {
			t.Fatalf("log of %d bytes grew to %d with writes refused", size, after)
		}
		check(s, "with writes refused")
	}

	refuse()
	onWriter(t, s, func() { s.checkpointFault = nil })
	// Taken again within the refused rounds' back-off.
	for deadline := time.Now().Add(lastRetry + 3*time.Second); set() != nil; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("writes still refused %v after checkpoints work again: %v", lastRetry+3*time.Second, set())
		}
	}
	if size := logSize(); size > 64<<10 {
		t.Fatalf("log after the checkpoint that ended the refusal: %d bytes; want it emptied", size)
	}
	check(s, "after the refusal")

	// Closed while refused: the log keeps what the checkpoint could not
	// write.
	refuse()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	check(s, "opened again")
}

// While writes are refused, a client that keeps retrying them does not
// make the writer retry the failing checkpoint (a bbolt commit of all that
// waits) once a round: the retries back off, up to lastRetry; and the
// first write after a checkpoint works again, within that, is taken.
func TestRefusedWritesBackOffTheirCheckpoints(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "store.db"), Options{SweepEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	// Past maxLogBytes of log a round checkpoints; failing, past
	// refuseLogBytes, writes are refused.
	value := make([]byte, 64<<10)
	onWriter(t, s, func() { s.refuseLogBytes = 64 << 10; s.checkpointFault = errors.New("injected: no room") })
	for i := 0; s.Set(ctx, "k", value, 0) == nil; i++ {
		if i > 2*maxLogBytes/len(value) {
			t.Fatalf("%d MiB of writes, every checkpoint failing: none refused", 2*maxLogBytes>>20)
		}
	}
	var before int
	onWriter(t, s, func() { before = s.checkpoints })
	start := time.Now()
	const writes = 300
	for range writes {
		if s.Set(ctx, "k", value, 0) == nil {
			t.Fatal("a write succeeded with checkpoints failing past the bound")
		}
	}
	elapsed := time.Since(start)
	var tries int
	onWriter(t, s, func() { tries = s.checkpoints - before })
	// Back-off from firstRetry, doubling: far fewer than the rounds. Once
	// a round, it would be writes.
	if most := 2 + int(elapsed/firstRetry); tries > most || tries >= writes/2 {
		t.Fatalf("%d refused writes in %v made %d checkpoint attempts; want at most %d", writes, elapsed, tries, min(most, writes/2-1))
	}

	onWriter(t, s, func() { s.checkpointFault = nil })
	start = time.Now()
	for s.Set(ctx, "k", value, 0) != nil {
		if time.Since(start) > lastRetry+3*time.Second {
			t.Fatalf("writes still refused %v after checkpoints work again", time.Since(start))
		}
		time.Sleep(5 * time.Millisecond)
	}
}
