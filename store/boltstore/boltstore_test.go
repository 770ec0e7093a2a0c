package boltstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/broodhq/brood/store"
	"github.com/broodhq/brood/store/boltstore"
	"github.com/broodhq/brood/store/storetest"
	bolt "go.etcd.io/bbolt"
)

func open(t *testing.T, path string, o boltstore.Options) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "store.db"), boltstore.Options{})
	})
}

func TestConformanceSynced(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "store.db"), boltstore.Options{Sync: true})
	})
}

func TestDataSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	ctx := context.Background()
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Set(ctx, "k", []byte("v"), 0)
	s.Incr(ctx, "n", 7, time.Hour)
	it, _, _ := s.Lookup(ctx, "k")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, boltstore.Options{})
	got, ok, err := s.Lookup(ctx, "k")
	if err != nil || !ok || string(got.Value) != "v" || got.Version != it.Version {
		t.Fatalf("after reopening: %+v, %v, %v; want value v, version %d", got, ok, err, it.Version)
	}
	if n, _ := s.Incr(ctx, "n", 1, 0); n != 8 {
		t.Fatalf("counter after reopening = %d; want 8", n)
	}
	s.Set(ctx, "k", []byte("w"), 0)
	if again, _, _ := s.Lookup(ctx, "k"); again.Version <= it.Version {
		t.Fatalf("version after reopening = %d; want more than %d (versions are never reused)", again.Version, it.Version)
	}
}

func TestExpiredKeysAreRemoved(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "store.db"), boltstore.Options{SweepEvery: 20 * time.Millisecond})
	ctx := context.Background()
	for i := range 200 {
		if err := s.Set(ctx, fmt.Sprint("short", i), []byte("v"), 10*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	s.Set(ctx, "live", []byte("v"), 0)
	s.Set(ctx, "later", []byte("v"), time.Hour)
	s.Set(ctx, "replaced", []byte("v"), 10*time.Millisecond)
	s.Set(ctx, "replaced", []byte("v"), 0) // no longer expires
	deadline := time.Now().Add(10 * time.Second)
	for {
		keys, expiring, err := s.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if keys == 3 && expiring == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d keys, %d in the expiry index; want 3 and 1 once the sweeper ran", keys, expiring)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, ok, _ := s.Get(ctx, "replaced"); !ok {
		t.Fatal("a key set again without a TTL was swept")
	}
}

func TestSecondOpenFailsNamingTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	open(t, path, boltstore.Options{})
	start := time.Now()
	_, err := boltstore.Open(path, boltstore.Options{LockTimeout: 200 * time.Millisecond})
	if !errors.Is(err, boltstore.ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second Open: %v; want ErrLocked naming %s", err, path)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("second Open took %s; want about its LockTimeout", d)
	}
}

func TestForeignFilesAreRefused(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	os.WriteFile(garbage, []byte(strings.Repeat("this is not a database\n", 1000)), 0o600)
	other := filepath.Join(dir, "other.db")
	db, err := bolt.Open(other, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("someone-elses")); return err })
	db.Close()
	for _, path := range []string{garbage, other} {
		_, err := boltstore.Open(path, boltstore.Options{})
		if !errors.Is(err, boltstore.ErrForeign) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "move the file away") {
			t.Errorf("Open(%s): %v; want ErrForeign naming the file and what to do", filepath.Base(path), err)
		}
	}
}

// TestFullDisk fills a small tmpfs: writes fail with the system's error,
// reads keep working, nothing acknowledged is lost, and writes work again
// once there is room (the tmpfs grown).
func TestFullDisk(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	path := filepath.Join(dir, "store.db")
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() }) // before the unmount
	ctx := context.Background()
	value := make([]byte, 64<<10)
	var acked []string
	var werr error
	for i := range 1000 {
		k := fmt.Sprint("k", i)
		if werr = s.Set(ctx, k, value, 0); werr != nil {
			break
		}
		acked = append(acked, k)
	}
	if werr == nil {
		t.Fatal("64 MiB of writes to a 2 MiB filesystem all succeeded")
	}
	if !errors.Is(werr, store.ErrUnavailable) || !errors.Is(werr, syscall.ENOSPC) || !strings.Contains(werr.Error(), path) {
		t.Fatalf("write to a full disk: %v; want store.ErrUnavailable wrapping ENOSPC, naming the file", werr)
	}
	if len(acked) == 0 {
		t.Fatal("no write succeeded before the disk filled")
	}
	for _, k := range acked {
		if v, ok, err := s.Get(ctx, k); err != nil || !ok || len(v) != len(value) {
			t.Fatalf("read of %s, acknowledged before the disk filled: %d bytes, %v, %v", k, len(v), ok, err)
		}
	}
	// Room again, as when the operator frees space: the same Store
	// writes again.
	if out, err := exec.Command("mount", "-o", "remount,size=16m", dir).CombinedOutput(); err != nil {
		t.Fatalf("grow the tmpfs: %v: %s", err, out)
	}
	if err := s.Set(ctx, "after", []byte("v"), 0); err != nil {
		t.Fatalf("write after making room: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, boltstore.Options{})
	for _, k := range append(acked, "after") {
		if _, ok, err := s.Get(ctx, k); err != nil || !ok {
			t.Fatalf("after reopening, %s: %v, %v; want it there", k, ok, err)
		}
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// A write keeps its own copy of the value: the caller may reuse its buffer
// as soon as the write returns, through the Store or in a Group.
func TestWritesCopyTheValue(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "store.db"), boltstore.Options{})
	ctx := context.Background()
	buf := []byte("first")
	s.Set(ctx, "set", buf, 0)
	s.CompareAndSet(ctx, "cas", buf, 0, 0)
	s.Group(ctx, func(w store.Store) {
		w.Set(ctx, "group-set", buf, 0)
		w.CompareAndSet(ctx, "group-cas", buf, 0, 0)
	})
	copy(buf, "again")
	for _, k := range []string{"set", "cas", "group-set", "group-cas"} {
		if v, ok, err := s.Get(ctx, k); err != nil || !ok || string(v) != "first" {
			t.Errorf("%s once the caller changed its buffer: %q, %v, %v; want %q", k, v, ok, err, "first")
		}
	}
}
