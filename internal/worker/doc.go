// Package worker is the runtime of a worker process: it takes over the slot
// sockets the master passed it, runs the WithApp hooks, serves the
// application's handler behind its middleware chain with net/http, reports
// heartbeats (requests, progress) to the master, runs the workers' share of
// scheduled jobs, and drains when told to stop: stop accepting, answer
// keep-alive clients with Connection: close, finish requests, then the
// OnStop hooks. framework.Run calls Run in a process the master started as
// a worker.
//
// With balance shared it also serves the socket every worker shares, and
// accepts from it through a gate (gate.go): while it holds fewer
// connections than the share the master sends, or once a connection has
// waited while every worker was at its share.
package worker
