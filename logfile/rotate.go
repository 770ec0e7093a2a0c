package logfile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// stampLayout names rotated files. UTC, because local time runs backwards
// once a year and the names must sort in rotation order; milliseconds, so
// that rotations in the same second get different names.
const stampLayout = "20060102T150405.000Z"

// Rotator renames a log file aside when it grows past MaxSize or when asked,
// and later compresses and prunes the renamed files. It is meant for the one
// process (brood's agent) that rotates; the writers only Reopen.
//
// Rotated files are named STEM-STAMP.EXT next to the live file, for example
// access.log becomes access-20240131T235959.123Z.log (and .log.gz once
// compressed). The stamp is the UTC time of the rotation; a rotation never
// takes a stamp at or before an existing rotated file's, so names sort in
// rotation order even if the clock steps back, and two rotations in the same
// millisecond do not collide.
//
// A Rotator's methods are safe for concurrent use. Set the fields before the
// first call and do not copy a Rotator after it.
type Rotator struct {
	// Path is the live log file that the writers open with Open.
	Path string
	// MaxSize is the size in bytes at which RotateIfNeeded rotates. Zero
	// disables size-based rotation.
	MaxSize int64
	// Keep is the number of rotated files to keep; Complete deletes older
	// ones. Zero keeps them all.
	Keep int
	// Compress makes Complete gzip rotated files.
	Compress bool
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	// mu guards renaming and deleting; cmu serialises Complete, so a file
	// is never deleted while it is being compressed. Order: cmu, then mu.
	mu  sync.Mutex
	cmu sync.Mutex
}

// Rotation is one rename done by a Rotator. Until every process that writes
// to Path has reopened it, some may still be appending to Name, so the file
// must not be compressed or deleted yet: tell every writer to Reopen, then
// call Complete (or CompleteAfter).
type Rotation struct {
	// Path is the live path, which the next writer to open recreates.
	Path string
	// Name is where the old contents now are.
	Name string

	stamp time.Time
	r     *Rotator
}

// Rotate renames the file aside now, whatever its size. It returns nil and
// no error when there is nothing to rotate: the file is missing or empty.
func (r *Rotator) Rotate() (*Rotation, error) {
	return r.rotate(1)
}

// RotateIfNeeded rotates the file if it holds MaxSize bytes or more, and
// otherwise returns nil and no error. Call it periodically.
func (r *Rotator) RotateIfNeeded() (*Rotation, error) {
	if r.MaxSize <= 0 {
		return nil, nil
	}
	return r.rotate(r.MaxSize)
}

func (r *Rotator) rotate(minSize int64) (*Rotation, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fi, err := os.Stat(r.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("rotate %s: %w", r.Path, err)
	}
	if fi.Size() < minSize {
		return nil, nil
	}
	old, err := r.list()
	if err != nil {
		return nil, fmt.Errorf("rotate %s: %w", r.Path, err)
	}
	stamp := r.now().UTC().Truncate(time.Millisecond)
	if n := len(old); n > 0 && !stamp.After(old[n-1].stamp) {
		stamp = old[n-1].stamp.Add(time.Millisecond)
	}
	// The listing rules out collisions with our own names; renameNoReplace
	// rules out the rest (a file created since), and the bound keeps a
	// broken directory from spinning us.
	for range 100 {
		name := r.nameFor(stamp)
		err := renameNoReplace(r.Path, name)
		if err == nil {
			return &Rotation{Path: r.Path, Name: name, stamp: stamp, r: r}, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("rotate %s: %w", r.Path, err)
		}
		stamp = stamp.Add(time.Millisecond)
	}
	return nil, fmt.Errorf("rotate %s: no free name after %s", r.Path, r.nameFor(stamp))
}

// Complete deletes rotated files beyond Keep and, with Compress, gzips the
// rest, then removes the uncompressed originals. Call it only once every
// writing process has reopened after this rotation: a line written into
// Name after it has been compressed would be lost.
//
// Because every writer reopened after this rename, none can still be writing
// to an older rotated file either, so Complete also finishes older rotations
// left uncompressed (by a crash, or a Complete that was never called). It
// never touches files rotated after this one. Calling Complete again does no
// harm.
func (rot *Rotation) Complete() error {
	r := rot.r
	r.cmu.Lock()
	defer r.cmu.Unlock()

	r.mu.Lock()
	done, err := r.list()
	if err == nil {
		done, err = r.prune(done, rot.stamp)
	}
	r.mu.Unlock()

	var errs []error
	if err != nil {
		errs = append(errs, fmt.Errorf("complete rotation of %s: %w", rot.Path, err))
	}
	if r.Compress {
		// Outside mu: compressing a large file takes seconds, and
		// RotateIfNeeded should not wait for it.
		for _, e := range done {
			if e.plain {
				if err := compressFile(e.path(r, "")); err != nil {
					errs = append(errs, fmt.Errorf("complete rotation of %s: %w", rot.Path, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// CompleteAfter waits for grace and then calls Complete. Use it when the
// writers cannot confirm that they reopened: grace must be longer than the
// slowest writer takes to reopen after being told, or lines written late
// into the rotated file are lost when it is compressed. If ctx ends first,
// CompleteAfter returns its cause and leaves the files as they are; the next
// rotation's Complete finishes them.
func (rot *Rotation) CompleteAfter(ctx context.Context, grace time.Duration) error {
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("complete rotation of %s: %w", rot.Path, context.Cause(ctx))
	case <-t.C:
	}
	return rot.Complete()
}

func (r *Rotator) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// split returns the directory, the name without extension and the
// extension of the live file.
func (r *Rotator) split() (dir, stem, ext string) {
	dir, base := filepath.Split(r.Path)
	ext = filepath.Ext(base)
	return dir, strings.TrimSuffix(base, ext), ext
}

func (r *Rotator) nameFor(stamp time.Time) string {
	dir, stem, ext := r.split()
	return filepath.Join(dir, stem+"-"+stamp.UTC().Format(stampLayout)+ext)
}

// rotated is one rotation's files as found in the directory.
type rotated struct {
	stamp time.Time
	plain bool // STEM-STAMP.EXT exists
	gz    bool // STEM-STAMP.EXT.gz exists
	tmp   bool // STEM-STAMP.EXT.gz.tmp, left by an interrupted compression
}

func (e rotated) path(r *Rotator, suffix string) string {
	return r.nameFor(e.stamp) + suffix
}

// list returns the rotated files of r.Path, oldest first.
func (r *Rotator) list() ([]rotated, error) {
	dir, stem, ext := r.split()
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	byStamp := map[time.Time]*rotated{}
	for _, de := range entries {
		rest, ok := strings.CutPrefix(de.Name(), stem+"-")
		if !ok {
			continue
		}
		suffix, found := "", false
		for _, s := range []string{ext + ".gz.tmp", ext + ".gz", ext} {
			if strings.HasSuffix(rest, s) {
				suffix, found = s, true
				break
			}
		}
		if !found || len(rest)-len(suffix) != len(stampLayout) {
			continue
		}
		stamp, err := time.Parse(stampLayout, rest[:len(stampLayout)])
		if err != nil {
			continue
		}
		e := byStamp[stamp]
		if e == nil {
			e = &rotated{stamp: stamp}
			byStamp[stamp] = e
		}
		switch suffix {
		case ext + ".gz.tmp":
			e.tmp = true
		case ext + ".gz":
			e.gz = true
		default:
			e.plain = true
		}
	}
	out := make([]rotated, 0, len(byStamp))
	for _, e := range byStamp {
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b rotated) int { return a.stamp.Compare(b.stamp) })
	return out, nil
}

// prune deletes the oldest rotations beyond r.Keep, counting a rotation's
// plain and gzipped files as one, but none stamped after upTo. It returns the
// rotations stamped at or before upTo that it kept.
func (r *Rotator) prune(all []rotated, upTo time.Time) ([]rotated, error) {
	cut := 0
	if r.Keep > 0 {
		cut = max(len(all)-r.Keep, 0)
	}
	var kept []rotated
	var errs []error
	for i, e := range all {
		if e.stamp.After(upTo) {
			break
		}
		if i >= cut {
			kept = append(kept, e)
			continue
		}
		for _, suffix := range []string{"", ".gz", ".gz.tmp"} {
			err := os.Remove(e.path(r, suffix))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("prune: %w", err))
			}
		}
	}
	return kept, errors.Join(errs...)
}
