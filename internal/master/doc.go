// Package master is the runtime of the brood master, the process the user
// started: one loop (master.go) owns every child, slot and generation; it
// starts the agent and the workers by re-executing the binary, restarts
// them with backoff and stops restarting a slot in a crash loop, runs
// reloads and scaling (rolling.go, scale.go), replaces hung and oversized
// workers (health.go), routes messages between children off the loop
// (route.go, agentlink.go), runs rounds of log reopening (logs.go), answers
// the control socket (controlsock.go), and tells a service manager about its
// state (notify.go).
//
// Each worker slot has a socket the master binds at startup and keeps until
// it exits: closing a SO_REUSEPORT socket resets the connections in its
// accept queue, so a slot's socket outlives its workers. A replacement, a
// reloaded worker or a worker that took over a retired slot inherits the
// socket; the one it replaces stops accepting, drains and exits.
//
// Children are started from one locked OS thread (spawn.go): on Linux the
// parent-death signal fires when the thread that forked a child exits.
package master
