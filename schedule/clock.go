package schedule

import "time"

// A Clock tells the scheduler the time and wakes it up later. The scheduler
// only ever asks for callbacks, never for channels, so that a fake clock can
// run them in the caller's goroutine and tests know that a tick has been
// handled when Advance returns.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f, in a goroutine of the clock's choosing, once d has
	// passed. The returned Timer cancels the call.
	AfterFunc(d time.Duration, f func()) Timer
}

// A Timer is a pending AfterFunc call. Stop reports whether it prevented
// the call; *time.Timer satisfies it.
type Timer interface {
	Stop() bool
}

// SystemClock is the real clock, the default when Options.Clock is nil.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc is time.AfterFunc.
func (SystemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
