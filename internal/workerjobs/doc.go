// Package workerjobs holds the schedules that workers register with
// app.App.Every and app.App.Cron, and runs their jobs when the agent says a
// tick is due.
//
// The schedule itself lives in the agent, so that a tick happens once per
// machine however many workers there are: each worker announces its
// registry's Specs to the agent, which schedules every name once (the first
// announcement wins; a worker announcing the same name with another
// schedule is told so) and, at each tick, asks one worker or every worker
// to Run the job. This package is the workers' half; the framework wires
// both halves to the messenger.
package workerjobs
