package schedule

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// A timing says when a job runs next; String is what Status shows.
type timing interface {
	// Next returns the first tick after t.
	Next(t time.Time) time.Time
	// Resume returns the first tick after now, when the ticks between due
	// and now were missed.
	Resume(due, now time.Time) time.Time
	String() string
}

type interval time.Duration

func (d interval) Next(t time.Time) time.Time { return t.Add(time.Duration(d)) }
func (d interval) String() string             { return "every " + time.Duration(d).String() }

// Resume keeps the interval's phase, so a job that ran at :07 every hour
// still does after a pause.
func (d interval) Resume(due, now time.Time) time.Time {
	missed := now.Sub(due) / time.Duration(d)
	return due.Add((missed + 1) * time.Duration(d))
}

// cronTiming evaluates a parsed spec in loc. robfig/cron evaluates a spec
// without a TZ= prefix in the location of the time it is given, so handing it
// t.In(loc) is how the scheduler's location reaches it, and a TZ= prefix in
// the spec still wins.
type cronTiming struct {
	spec string
	s    cron.Schedule
	loc  *time.Location
}

func (c cronTiming) Next(t time.Time) time.Time { return c.s.Next(t.In(c.loc)) }
func (c cronTiming) String() string             { return c.spec }

func (c cronTiming) Resume(_, now time.Time) time.Time { return c.Next(now) }

// cronExample ends every bad-spec error, so that whoever wrote the spec sees
// what a good one looks like without opening the docs.
const cronExample = `want 5 fields "minute hour day-of-month month day-of-week" like "*/15 * * * *" or "0 3 * * mon-fri", or a descriptor like "@hourly", "@daily", "@every 5m"`

func parseCron(spec string, loc *time.Location, now time.Time) (cronTiming, error) {
	spec = strings.TrimSpace(spec)
	s, err := parseStandard(spec)
	if err != nil {
		return cronTiming{}, fmt.Errorf("%w: cron spec %q: %w (%s)", ErrInvalidSchedule, spec, err, cronExample)
	}
	// cron quietly turns "@every 500ms" into 1s and "@every -5m" into 1s;
	// a schedule that is not what was written is refused instead.
	if cd, ok := s.(cron.ConstantDelaySchedule); ok {
		const every = "@every"
		d, _ := time.ParseDuration(strings.TrimSpace(spec[strings.Index(spec, every)+len(every):]))
		if d != cd.Delay {
			return cronTiming{}, fmt.Errorf("%w: cron spec %q: @every takes whole seconds, at least 1s; use Every for other intervals (%s)", ErrInvalidSchedule, spec, cronExample)
		}
	}
	c := cronTiming{spec: spec, s: s, loc: loc}
	if c.Next(now).IsZero() {
		return cronTiming{}, fmt.Errorf("%w: cron spec %q never fires (%s)", ErrInvalidSchedule, spec, cronExample)
	}
	return c, nil
}

// parseStandard shields callers from a parser panic: cron v3.0.1 slices out
// of range on a "TZ=Europe/Berlin" with nothing after it.
func parseStandard(spec string) (s cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("unparsable spec: %v", r)
		}
	}()
	return cron.ParseStandard(spec)
}
