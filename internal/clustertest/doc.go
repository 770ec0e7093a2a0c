// Package clustertest runs real brood clusters in tests. A test binary
// re-executes itself as the master (the cloudflare/tableflip pattern): Main,
// called from TestMain, runs the named application when the environment asks
// for one, and the master's children, being the same binary, do the same.
package clustertest
