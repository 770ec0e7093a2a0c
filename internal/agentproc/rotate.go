package agentproc

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/broodhq/brood/internal/child"
	"github.com/broodhq/brood/internal/proclog"
	"github.com/broodhq/brood/logfile"
	"github.com/broodhq/brood/schedule"
)

// logRotation is the agent's rotation of the cluster's log files. It is the
// only process that renames them: with every process rotating the same file
// at midnight, each would rename the others' fresh file.
//
// One rotation is the protocol of logfile's package documentation: rename
// the files that are due aside, have every process reopen them (reopen, which
// goes through the master), and only once all confirmed, prune and gzip.
// If some process did not confirm, the renamed files are left as they are;
// the next rotation's Complete finishes them, since by then everyone has
// reopened at least once more.
type logRotation struct {
	log      *slog.Logger
	clock    schedule.Clock
	loc      *time.Location // where midnight is; time.Local
	check    time.Duration  // size check interval; 0: no size checks
	daily    bool
	rotators []*logfile.Rotator
	reopen   func(ctx context.Context) error

	mu sync.Mutex // one rotation at a time
}

// RotationConfig is the log files' rotation policy (WithLog*).
type RotationConfig struct {
	Dir      string
	MaxSize  int64         // bytes; 0: by date only
	Keep     int           // rotated files kept per log file; 0: all
	Compress bool          // gzip rotated files
	Daily    bool          // rotate at local midnight
	Check    time.Duration // size check interval
}

func newLogRotation(c RotationConfig, log *slog.Logger, reopen func(context.Context) error) *logRotation {
	r := &logRotation{
		log:    log,
		clock:  schedule.SystemClock{},
		loc:    time.Local,
		daily:  c.Daily,
		reopen: reopen,
	}
	if c.MaxSize > 0 {
		r.check = c.Check
	}
	for _, name := range []string{proclog.AppLogName, proclog.AccessLogName} {
		r.rotators = append(r.rotators, &logfile.Rotator{
			Path:     filepath.Join(c.Dir, name),
			MaxSize:  c.MaxSize,
			Keep:     c.Keep,
			Compress: c.Compress,
			Now:      func() time.Time { return r.clock.Now() },
		})
	}
	return r
}

// run rotates by size every check and everything at each local midnight,
// until ctx ends. Timers are the clock's, so tests can move time by hand.
func (r *logRotation) run(ctx context.Context) {
	if r.check <= 0 && !r.daily {
		return
	}
	sizeDue := make(chan struct{}, 1)
	dayDue := make(chan struct{}, 1)
	notify := func(c chan struct{}) func() {
		return func() {
			select {
			case c <- struct{}{}:
			default:
			}
		}
	}
	var sizeT, dayT schedule.Timer
	armSize := func() {
		if r.check > 0 {
			sizeT = r.clock.AfterFunc(r.check, notify(sizeDue))
		}
	}
	var midnight time.Time
	armDay := func() {
		if !r.daily {
			return
		}
		now := r.clock.Now().In(r.loc)
		// From the midnight just handled, not from now: a timer that fires
		// a hair early (the wall clock was stepped) must not aim at the
		// same midnight again.
		if now.Before(midnight) {
			now = midnight
		}
		midnight = logfile.NextMidnight(now)
		dayT = r.clock.AfterFunc(midnight.Sub(r.clock.Now()), notify(dayDue))
	}
	armSize()
	armDay()
	defer func() {
		for _, t := range []schedule.Timer{sizeT, dayT} {
			if t != nil {
				t.Stop()
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sizeDue:
			r.rotate(ctx, false)
			armSize()
		case <-dayDue:
			r.rotate(ctx, true)
			armDay()
		}
	}
}

// rotate renames aside the files that are due (all of them when all is
// set, else those past MaxSize), has every process reopen, then completes.
func (r *logRotation) rotate(ctx context.Context, all bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var done []*logfile.Rotation
	for _, rot := range r.rotators {
		var (
			res *logfile.Rotation
			err error
		)
		if all {
			res, err = rot.Rotate()
		} else {
			res, err = rot.RotateIfNeeded()
		}
		if err != nil {
			r.log.Error("rotate log file", "err", err)
			continue
		}
		if res != nil {
			done = append(done, res)
		}
	}
	if len(done) == 0 {
		return
	}
	err := r.reopen(ctx)
	for _, res := range done {
		r.log.Info("log file rotated", "file", res.Path, "to", filepath.Base(res.Name), "reason", rotateReason(all))
	}
	if err != nil {
		if errors.Is(err, child.ErrNotReopened) {
			r.log.Warn("rotated log files left as they are until the next rotation", "err", err)
		} else {
			r.log.Error("rotated log files left as they are until the next rotation", "err", err)
		}
		return
	}
	for _, res := range done {
		if err := res.Complete(); err != nil {
			r.log.Error("finish log rotation", "err", err)
		}
	}
}

func rotateReason(all bool) string {
	if all {
		return "midnight"
	}
	return "size"
}
