// Package mixedload is the load of cmd/shared and cmd/sharedcluster, both
// sides: client loops of which a share GET /slow and the rest GET /, timing
// the fast ones (Run), and Burn, which the servers' /slow spends its CPU in.
package mixedload
