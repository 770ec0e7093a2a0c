package logfile

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fixedClock returns a Now that always says t, or whatever *t says later.
func fixedClock(t *time.Time) func() time.Time { return func() time.Time { return *t } }

func writeLog(t *testing.T, path, content string) {
	t.Helper()
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// gunzipped returns the content of name, or of name.gz.
func content(t *testing.T, name string) string {
	t.Helper()
	var b strings.Builder
	if _, err := os.Stat(name); err != nil {
		name += ".gz"
	}
	readLines(t, name, func(l []byte) { b.Write(l); b.WriteByte('\n') })
	return b.String()
}

func mustRotate(t *testing.T, r *Rotator) *Rotation {
	t.Helper()
	rot, err := r.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if rot == nil {
		t.Fatal("Rotate returned no rotation")
	}
	return rot
}

func TestRotateNames(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	now := time.Date(2024, 1, 31, 23, 59, 59, 123456789, time.FixedZone("X", 3600))
	r := &Rotator{Path: path, Now: fixedClock(&now)}
	writeLog(t, path, "a\n")
	rot := mustRotate(t, r)
	if want := filepath.Join(dir, "access-20240131T225959.123Z.log"); rot.Name != want {
		t.Errorf("Name: got %s, want %s", rot.Name, want)
	}
	if rot.Path != path {
		t.Errorf("Path: got %s, want %s", rot.Path, path)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("live file still there after rotation: %v", err)
	}

	// Without an extension the stamp goes last.
	bare := filepath.Join(dir, "app")
	writeLog(t, bare, "b\n")
	rot = mustRotate(t, &Rotator{Path: bare, Now: fixedClock(&now)})
	if want := filepath.Join(dir, "app-20240131T225959.123Z"); rot.Name != want {
		t.Errorf("Name: got %s, want %s", rot.Name, want)
	}
}

// Rotations in the same millisecond, and after the clock stepped back, get
// distinct names that sort in rotation order, and no content is overwritten.
func TestRotateSameInstantAndClockBack(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	r := &Rotator{Path: path, Now: fixedClock(&now)}
	var names []string
	for i, content := range []string{"1\n", "2\n", "3\n", "4\n", "5\n"} {
		if i == 3 {
			now = now.Add(-time.Hour) // NTP stepped the clock back
		}
		writeLog(t, path, content)
		names = append(names, mustRotate(t, r).Name)
	}
	if !slices.IsSorted(names) {
		t.Errorf("names not in rotation order: %v", names)
	}
	if len(slices.Compact(slices.Clone(names))) != len(names) {
		t.Errorf("names collide: %v", names)
	}
	for i, name := range names {
		if got, want := content(t, name), string(rune('1'+i))+"\n"; got != want {
			t.Errorf("%s: got %q, want %q", name, got, want)
		}
	}
}

// A file already at the name a rotation wants is never overwritten: the
// rotation takes a later name.
func TestRotateNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	r := &Rotator{Path: path, Now: fixedClock(&now)}
	target := r.nameFor(now)
	writeLog(t, target, "theirs\n")
	writeLog(t, path, "ours\n")
	rot := mustRotate(t, r)
	if rot.Name == target {
		t.Fatalf("rotated onto the existing %s", target)
	}
	if got := content(t, rot.Name); got != "ours\n" {
		t.Errorf("got %q, want %q", got, "ours\n")
	}
	if got := content(t, target); got != "theirs\n" {
		t.Errorf("existing file: got %q, want %q", got, "theirs\n")
	}
}

// The last line of defence when something creates the target between the
// listing and the rename.
func TestRenameNoReplace(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	writeLog(t, a, "a\n")
	writeLog(t, b, "b\n")
	if err := renameNoReplace(a, b); !errors.Is(err, fs.ErrExist) {
		t.Errorf("got %v, want an error wrapping fs.ErrExist", err)
	}
	if got := content(t, b); got != "b\n" {
		t.Errorf("target: got %q, want %q", got, "b\n")
	}
	c := filepath.Join(dir, "c")
	if err := renameNoReplace(a, c); err != nil {
		t.Fatal(err)
	}
	if got := content(t, c); got != "a\n" {
		t.Errorf("renamed: got %q, want %q", got, "a\n")
	}
}

func TestRotateNothingToDo(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	r := &Rotator{Path: path, MaxSize: 10}
	if rot, err := r.Rotate(); rot != nil || err != nil {
		t.Errorf("missing file: got %v, %v; want nil, nil", rot, err)
	}
	writeLog(t, path, "")
	if rot, err := r.Rotate(); rot != nil || err != nil {
		t.Errorf("empty file: got %v, %v; want nil, nil", rot, err)
	}
	writeLog(t, path, "123456789") // 9 bytes
	if rot, err := r.RotateIfNeeded(); rot != nil || err != nil {
		t.Errorf("below MaxSize: got %v, %v; want nil, nil", rot, err)
	}
	writeLog(t, path, "\n") // 10 bytes
	rot, err := r.RotateIfNeeded()
	if err != nil || rot == nil {
		t.Fatalf("at MaxSize: got %v, %v; want a rotation", rot, err)
	}
	if rot, err := (&Rotator{Path: path}).RotateIfNeeded(); rot != nil || err != nil {
		t.Errorf("MaxSize 0: got %v, %v; want nil, nil", rot, err)
	}
}

func TestKeep(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "gzip"}[compress], func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "access.log")
			now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
			r := &Rotator{Path: path, Keep: 2, Compress: compress, Now: fixedClock(&now)}
			// Other files in the directory must survive pruning.
			others := []string{"access.log.1", "access-old.log", "app-20200101T000000.000Z.log", "access-20200101T000000.000Z.txt"}
			for _, o := range others {
				writeLog(t, filepath.Join(dir, o), "other\n")
			}
			var names []string
			for i := range 5 {
				now = now.Add(time.Second)
				writeLog(t, path, string(rune('1'+i))+"\n")
				rot := mustRotate(t, r)
				names = append(names, rot.Name)
				if err := rot.Complete(); err != nil {
					t.Fatal(err)
				}
			}
			for i, name := range names {
				_, errPlain := os.Stat(name)
				_, errGz := os.Stat(name + ".gz")
				kept := i >= 3
				if present := errPlain == nil || errGz == nil; present != kept {
					t.Errorf("%s: present %v, want %v", filepath.Base(name), present, kept)
				}
				if kept && compress != (errGz == nil && errPlain != nil) {
					t.Errorf("%s: compressed %v, want %v", filepath.Base(name), errGz == nil, compress)
				}
				if kept {
					if got, want := content(t, name), string(rune('1'+i))+"\n"; got != want {
						t.Errorf("%s: got %q, want %q", name, got, want)
					}
				}
			}
			got := dirNames(t, dir)
			for _, o := range others {
				if !slices.Contains(got, o) {
					t.Errorf("pruning deleted %s; directory: %v", o, got)
				}
			}
			if len(got) != len(others)+2 {
				t.Errorf("directory: got %v, want the others and 2 rotated files", got)
			}
		})
	}
}

// Complete finishes older rotations left uncompressed but never touches a
// rotation newer than its own, whose writers may not have reopened yet.
func TestCompleteLeavesLaterRotations(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	r := &Rotator{Path: path, Keep: 2, Compress: true, Now: fixedClock(&now)}
	var rots []*Rotation
	for i := range 3 {
		writeLog(t, path, string(rune('1'+i))+"\n")
		rots = append(rots, mustRotate(t, r))
	}
	// A leftover from a compression that crashed halfway.
	if err := os.WriteFile(rots[0].Name+".gz.tmp", []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rots[1].Complete(); err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Base(rots[1].Name) + ".gz", filepath.Base(rots[2].Name)}
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Errorf("after completing the second of three: got %v, want %v", got, want)
	}
	if err := rots[2].Complete(); err != nil {
		t.Fatal(err)
	}
	if err := rots[2].Complete(); err != nil {
		t.Errorf("second Complete: %v", err)
	}
	want = []string{filepath.Base(rots[1].Name) + ".gz", filepath.Base(rots[2].Name) + ".gz"}
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Errorf("after completing the third: got %v, want %v", got, want)
	}
	if got := content(t, rots[2].Name); got != "3\n" {
		t.Errorf("got %q, want %q", got, "3\n")
	}
}

func TestCompressKeepsModeAndName(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	writeLog(t, path, strings.Repeat(`{"msg":"hello"}`+"\n", 1000))
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	r := &Rotator{Path: path, Compress: true}
	rot := mustRotate(t, r)
	if err := rot.Complete(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(rot.Name + ".gz")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode: got %v, want 0600", fi.Mode().Perm())
	}
	if fi.Size() > 1000 {
		t.Errorf("compressed size %d, want far less than the 16000 bytes in", fi.Size())
	}
	if got := content(t, rot.Name); got != strings.Repeat(`{"msg":"hello"}`+"\n", 1000) {
		t.Errorf("content changed by compression (%d bytes)", len(got))
	}
}

func TestCompleteAfter(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	r := &Rotator{Path: path, Compress: true}
	writeLog(t, path, "x\n")
	rot := mustRotate(t, r)

	ctx, cancel := context.WithCancelCause(context.Background())
	stopping := errors.New("agent stopping")
	cancel(stopping)
	if err := rot.CompleteAfter(ctx, time.Hour); !errors.Is(err, stopping) {
		t.Errorf("cancelled: got %v, want the cause %v", err, stopping)
	}
	if _, err := os.Stat(rot.Name); err != nil {
		t.Errorf("cancelled CompleteAfter touched the file: %v", err)
	}

	start := time.Now()
	if err := rot.CompleteAfter(context.Background(), 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Errorf("waited %v, want at least the 50ms grace", waited)
	}
	if _, err := os.Stat(rot.Name + ".gz"); err != nil {
		t.Errorf("not compressed after grace: %v", err)
	}
}
