// Package target starts, watches and stops the servers the benchmarks
// measure: the binaries are built once, each run execs one, finds out when
// it first answers a request, reads its processes' memory and CPU time
// from /proc, and ends it (and every child it left) by pid.
//
// Linux only: it reads /proc.
//
// Servers are told where to listen with $BROOD_ADDR, which both brood
// applications and cmd/plain honour, always on 127.0.0.1.
package target
