package losslog

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// DefaultEvery is the interval a zero Log sums losses over.
const DefaultEvery = time.Second

// maxReasons bounds how many distinct reasons one interval keeps apart;
// further ones are summed under otherReasons.
const (
	maxReasons   = 32
	otherReasons = "other reasons"
)

// Log counts losses. Its zero value is ready to use, logs with the message
// "messages not delivered" and sums over DefaultEvery. Its methods are safe
// for concurrent use.
type Log struct {
	// Msg is the message of each line (default "messages not delivered").
	Msg string
	// Every is the interval losses are summed over (default DefaultEvery).
	Every time.Duration
	// Level is the level of each line (default slog.LevelWarn).
	Level slog.Leveler
	// AfterFunc replaces time.AfterFunc, for tests.
	AfterFunc func(time.Duration, func()) Timer

	mu      sync.Mutex
	log     *slog.Logger
	open    bool // an interval is running: losses wait for its end
	timer   Timer
	pending map[key]int64
}

// Timer is the part of *time.Timer that Log uses.
type Timer interface{ Stop() bool }

type key struct{ reason, action string }

// Add counts one loss of a message with action, for reason, and logs it to
// log now or at the end of the running interval.
func (l *Log) Add(log *slog.Logger, reason, action string) {
	l.mu.Lock()
	l.log = log
	if l.open {
		k := key{reason, action}
		if _, ok := l.pending[k]; !ok && len(l.pending) >= maxReasons {
			k = key{otherReasons, ""}
		}
		if l.pending == nil {
			l.pending = map[key]int64{}
		}
		l.pending[k]++
		l.mu.Unlock()
		return
	}
	l.open = true
	l.arm()
	l.mu.Unlock()
	l.write(log, []line{{key{reason, action}, 1}})
}

// Flush logs what is pending now and ends the interval; call it when the
// process stops.
func (l *Log) Flush() {
	l.mu.Lock()
	if l.timer != nil {
		l.timer.Stop()
	}
	l.open = false
	lines, log := l.takeLocked()
	l.mu.Unlock()
	l.write(log, lines)
}

// tick ends an interval: what it summed is logged, and if there was
// anything another interval starts, so a steady stream of losses makes
// one line per reason an interval.
func (l *Log) tick() {
	l.mu.Lock()
	lines, log := l.takeLocked()
	if len(lines) == 0 {
		l.open = false
	} else {
		l.arm()
	}
	l.mu.Unlock()
	l.write(log, lines)
}

func (l *Log) arm() {
	every := cmp.Or(l.Every, DefaultEvery)
	if l.AfterFunc != nil {
		l.timer = l.AfterFunc(every, l.tick)
		return
	}
	l.timer = time.AfterFunc(every, l.tick)
}

type line struct {
	key
	n int64
}

func (l *Log) takeLocked() ([]line, *slog.Logger) {
	lines := make([]line, 0, len(l.pending))
	for k, n := range l.pending {
		lines = append(lines, line{k, n})
	}
	clear(l.pending)
	slices.SortFunc(lines, func(a, b line) int {
		other := func(l line) bool { return l.key == key{otherReasons, ""} }
		return cmp.Or(compareBool(other(a), other(b)), cmp.Compare(a.reason, b.reason), cmp.Compare(a.action, b.action))
	})
	return lines, l.log
}

// compareBool orders false first.
func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func (l *Log) write(log *slog.Logger, lines []line) {
	if log == nil {
		return
	}
	msg := cmp.Or(l.Msg, "messages not delivered")
	var level slog.Leveler = slog.LevelWarn
	if l.Level != nil {
		level = l.Level
	}
	for _, ln := range lines {
		log.LogAttrs(context.Background(), level.Level(), msg,
			slog.Int64("count", ln.n), slog.String("reason", ln.reason), slog.String("action", ln.action))
	}
}
