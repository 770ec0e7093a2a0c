// Package profile takes a profile of the process it runs in, for broodctl
// pprof: the master takes its own, and every child takes one when the
// master asks over its channel (internal/child). Nothing listens on a port:
// the profile travels over the control socket and the child's channel.
//
// A CPU profile and a trace last the given duration. Mutex and block
// profiles only record while their rate is set: if the application did not
// set one, Collect turns it on for the duration and off again (for block
// profiles there is no way to read a rate, so one the application set is
// turned off afterwards too).
package profile
