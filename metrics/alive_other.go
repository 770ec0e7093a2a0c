//go:build !unix

package metrics

// processAlive cannot tell here: stale state files are left alone.
func processAlive(int) bool { return true }
