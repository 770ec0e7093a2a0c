// Package master is the runtime of the brood master, the process the user
// started. One loop (master.go) owns every child, slot and generation. It
// starts the agent and the workers by re-executing the binary, restarts
// them with backoff and stops restarting a slot in a crash loop
// (children.go), stops the cluster in order (stop.go), replaces hung and
// oversized workers (health.go), routes messages between children off the
// loop (route.go, agentlink.go), runs rounds of log reopening (logs.go),
// answers the control socket (controlsock.go), and tells a service manager
// about its state (notify.go).
//
// Reloads and scaling are operations (ops.go): straight-line code on a
// goroutine of their own, one at a time, that asks the loop for each step
// and waits for its answer; replace and promote (rolling.go) and the
// socket hand-over of scale.go are the steps.
//
// Each worker slot has a socket the master binds at startup and keeps until
// it exits: closing a SO_REUSEPORT socket resets the connections in its
// accept queue, so a slot's socket outlives its workers. A replacement, a
// reloaded worker or a worker that took over a retired slot inherits the
// socket; the one it replaces stops accepting, drains and exits.
//
// The seams (spawn.go): children start through a Starter, from one locked
// OS thread in production, since on Linux the parent-death signal fires
// when the thread that forked a child exits; time comes from a
// schedule.Clock and signals from a channel. The in-process tests
// (harness_test.go) drive the loop through fakes of all three.
package master
