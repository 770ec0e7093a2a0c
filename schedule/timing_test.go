package schedule_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Berlin and America/New_York on machines without zoneinfo

	"github.com/broodhq/brood/schedule"
)

// stepTo advances the clock to just before want, checks that the job has not
// run, then onto want, and checks that it ran there.
func stepTo(t *testing.T, f fixture, ran <-chan time.Time, want time.Time, runs int64) {
	t.Helper()
	if got := f.status(t, "j").NextRun; !got.Equal(want) {
		t.Fatalf("NextRun: got %v, want %v", got, want)
	}
	f.clk.Advance(want.Sub(f.clk.Now()) - time.Nanosecond)
	if got := f.status(t, "j").Runs; got != runs-1 {
		t.Fatalf("before %v: got %d runs, want %d", want, got, runs-1)
	}
	f.clk.Advance(time.Nanosecond)
	if got := recv(t, ran, "run at "+want.String()); !got.Equal(want) {
		t.Fatalf("job saw Now() = %v, want %v", got, want)
	}
	// The job has sent but not yet returned; a tick before it returns
	// would be skipped as an overlap.
	waitFor(t, "the run to finish", func() bool { return !f.status(t, "j").Running })
	st := f.status(t, "j")
	if st.Runs != runs || !st.LastStart.Equal(want) {
		t.Fatalf("after %v: got runs=%d last_start=%v, want runs=%d last_start=%v", want, st.Runs, st.LastStart, runs, want)
	}
}

func recordNow(clk *schedule.FakeClock, ran chan<- time.Time) func(context.Context) error {
	return func(context.Context) error {
		ran <- clk.Now()
		return nil
	}
}

func TestEveryFiresOnItsPeriod(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    time.Duration
	}{
		{"minute", time.Minute},
		{"ninety seconds", 90 * time.Second},
		{"sub-second", 250 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, t0, nil)
			ran := make(chan time.Time, 10)
			if err := f.s.Every(tc.d, "j", recordNow(f.clk, ran)); err != nil {
				t.Fatal(err)
			}
			f.start(t)
			for i := int64(1); i <= 3; i++ {
				stepTo(t, f, ran, t0.Add(time.Duration(i)*tc.d), i)
			}
		})
	}
}

func TestCronFiresAtSpecTimes(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(s string) time.Time {
		tm, err := time.Parse(time.DateTime, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for _, tc := range []struct {
		name  string
		spec  string
		loc   *time.Location
		start time.Time
		want  []time.Time // in UTC, so the expected offsets are spelled out
	}{
		{"quarter hours", "*/15 * * * *", time.UTC, t0,
			[]time.Time{utc("2026-01-05 10:15:00"), utc("2026-01-05 10:30:00"), utc("2026-01-05 10:45:00"), utc("2026-01-05 11:00:00")}},
		{"hourly descriptor", "@hourly", time.UTC, t0,
			[]time.Time{utc("2026-01-05 11:00:00"), utc("2026-01-05 12:00:00")}},
		{"every descriptor", "@every 5m", time.UTC, t0,
			[]time.Time{utc("2026-01-05 10:12:00"), utc("2026-01-05 10:17:00")}},
		// Berlin midnight is 23:00 UTC in winter and 22:00 UTC in summer.
		{"midnight as clocks go forward", "0 0 * * *", berlin, utc("2026-03-27 12:00:00"),
			[]time.Time{utc("2026-03-27 23:00:00"), utc("2026-03-28 23:00:00"), utc("2026-03-29 22:00:00"), utc("2026-03-30 22:00:00")}},
		{"midnight as clocks go back", "0 0 * * *", berlin, utc("2026-10-23 12:00:00"),
			[]time.Time{utc("2026-10-23 22:00:00"), utc("2026-10-24 22:00:00"), utc("2026-10-25 23:00:00")}},
		// The documented robfig/cron behaviour for wall times that a DST
		// change removes or repeats.
		{"02:30 skipped the day it does not exist", "30 2 * * *", berlin, utc("2026-03-28 12:00:00"),
			[]time.Time{utc("2026-03-30 00:30:00"), utc("2026-03-31 00:30:00")}},
		{"02:30 run twice the day it happens twice", "30 2 * * *", berlin, utc("2026-10-24 12:00:00"),
			[]time.Time{utc("2026-10-25 00:30:00"), utc("2026-10-25 01:30:00"), utc("2026-10-26 01:30:00")}},
		{"CRON_TZ in the spec beats Options.Location", "CRON_TZ=America/New_York 0 9 * * *", berlin, t0,
			[]time.Time{utc("2026-01-05 14:00:00"), utc("2026-01-06 14:00:00")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.start, tc.loc)
			ran := make(chan time.Time, 10)
			if err := f.s.Cron(tc.spec, "j", recordNow(f.clk, ran)); err != nil {
				t.Fatal(err)
			}
			f.start(t)
			for i, want := range tc.want {
				stepTo(t, f, ran, want, int64(i+1))
			}
			if got := f.status(t, "j").Schedule; got != tc.spec {
				t.Errorf("Schedule: got %q, want %q", got, tc.spec)
			}
		})
	}
}

func TestMissedTicksAreNotCaughtUp(t *testing.T) {
	f := newFixture(t, t0, nil)
	ran := make(chan time.Time, 10)
	if err := f.s.Every(time.Minute, "j", recordNow(f.clk, ran)); err != nil {
		t.Fatal(err)
	}
	f.start(t)

	// A pause through ten ticks gives one run, not ten.
	f.clk.Advance(10*time.Minute + 30*time.Second)
	recv(t, ran, "the late run")
	st := f.status(t, "j")
	if st.Runs != 1 {
		t.Errorf("after a 10m30s pause: got %d runs, want 1", st.Runs)
	}
	if want := t0.Add(11 * time.Minute); !st.NextRun.Equal(want) {
		t.Errorf("NextRun: got %v, want %v", st.NextRun, want)
	}
	if !strings.Contains(f.log.String(), "missed ticks") {
		t.Errorf("log does not mention the missed ticks:\n%s", f.log)
	}
}

func TestInvalidSchedulesAreRefused(t *testing.T) {
	noop := func(context.Context) error { return nil }
	for _, tc := range []struct {
		name    string
		add     func(*schedule.Scheduler) error
		mention []string
	}{
		{"every zero", func(s *schedule.Scheduler) error { return s.Every(0, "j", noop) }, []string{`"j"`, "> 0"}},
		{"every negative", func(s *schedule.Scheduler) error { return s.Every(-time.Second, "j", noop) }, []string{`"j"`, "> 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkRefused(t, tc.add, tc.mention)
		})
	}
	for _, spec := range []string{
		"",
		"* * *",
		"* * * * * *",
		"61 * * * *",
		"*/0 * * * *",
		"@fortnightly",
		"@every 500ms",
		"@every -5m",
		"0 0 30 2 *", // February 30th never comes
		"TZ=Europe/Berlin",
		"CRON_TZ=Mars/Olympus 0 0 * * *",
	} {
		t.Run("cron "+spec, func(t *testing.T) {
			add := func(s *schedule.Scheduler) error { return s.Cron(spec, "j", noop) }
			checkRefused(t, add, []string{`"j"`, `"` + spec + `"`, `"*/15 * * * *"`})
		})
	}
}

func checkRefused(t *testing.T, add func(*schedule.Scheduler) error, mention []string) {
	t.Helper()
	f := newFixture(t, t0, time.UTC)
	err := add(f.s)
	if !errors.Is(err, schedule.ErrInvalidSchedule) {
		t.Fatalf("got error %v, want one wrapping ErrInvalidSchedule", err)
	}
	for _, m := range mention {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("error %q does not mention %s", err, m)
		}
	}
	if got := f.s.Status(); len(got) != 0 {
		t.Errorf("refused job was registered: %+v", got)
	}
}
