// Package loadgen sends HTTP/1.1 GET requests to a server on this machine
// from a fixed number of concurrent connections and measures what comes
// back: successful requests per second, errors by kind and latency
// percentiles.
//
// It exists because the benchmarks run the load generator on the same two
// cores as the server under test, so the generator must cost as little CPU
// as possible: each connection is one goroutine writing a request built once
// and reading the response with a minimal parser (status line, the
// Content-Length, chunked and Connection headers, nothing else), and each
// keeps its own counters and latency histogram, merged once at the end.
//
// Only loopback targets are accepted (127.0.0.0/8 and ::1, or the name
// localhost): the benchmarks must never send traffic off this machine.
//
// Every run is bounded in time; a request count can end it sooner.
package loadgen
