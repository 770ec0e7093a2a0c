// Package schedule runs named jobs on fixed intervals and cron specs. The
// agent process owns one Scheduler, so each job runs once per machine; the
// agent package builds its Every and Cron, and worker-side jobs, on top.
//
//	s := schedule.New(schedule.Options{Logger: log})
//	err := s.Every(time.Minute, "flush", flush)
//	err = s.Cron("0 3 * * *", "vacuum", vacuum)
//	err = s.Start(ctx)
//	...
//	err = s.Stop(shutdownCtx)
//
// # Schedules
//
// Every(d) ticks d after Start (or after the Every call, once started), then
// every d after the previous tick, so a slow run does not shift later ticks.
// Cron takes the standard 5 fields (minute hour day-of-month month
// day-of-week) and the descriptors @yearly, @monthly, @weekly, @daily,
// @hourly and "@every 5m" (whole seconds), parsed by github.com/robfig/cron/v3.
// Specs are evaluated in Options.Location, time.Local by default; a spec may
// name its own with a "CRON_TZ=Europe/Berlin " prefix. Daylight saving
// changes follow robfig/cron: "0 0 * * *" stays at local midnight (23 or 25
// hours apart), a time that does not exist that day ("30 2 * * *" when clocks
// go forward) is not run that day, and a time that happens twice when clocks
// go back is run twice. Every and Cron return an error wrapping
// ErrInvalidSchedule for d <= 0 or a spec that does not parse (the message
// shows a valid one), and ErrDuplicateName for a name already in use.
//
// # Runs
//
// Each run gets its own goroutine and a context that ends when Stop is
// called (cause ErrStopped) or when Start's context ends. A job does not
// overlap itself: a tick that comes while the previous run is still going is
// skipped, counted in JobStatus.Skipped and logged at warn level, unless the
// job was added with AllowOverlap. Missed ticks are not caught up: if the
// process was paused (or the machine slept) through several ticks, the job
// runs once when it wakes, then at its next scheduled time after that (an
// Every job keeps its phase: every hour at :07 stays at :07).
// Go timers measure elapsed time, which on Linux does not advance while the
// machine sleeps, so after a suspend a run may come late rather than at once.
//
// A job that returns an error or panics is logged with its name (a panic with
// its stack), counted in JobStatus.Failures, and keeps its schedule. A panic
// never leaves the scheduler.
//
// # Stopping
//
// Stop unschedules everything, cancels the jobs' contexts and waits for the
// running jobs until its own context ends; then it returns an error naming
// the jobs still running. Jobs that ignore their context keep running after
// that; a later Stop waits for them again.
//
// # Clocks
//
// The scheduler reads the time and sets timers through a Clock. FakeClock
// lets tests in any package move time by hand: Advance runs the due ticks in
// the caller's goroutine, so once it returns, the runs those ticks start have
// been counted, though the job goroutines may still be working: wait until
// Status shows a run finished before advancing to the job's next tick, or
// that tick is skipped as an overlap.
package schedule
