//go:build !linux

package metrics

import "net"

// AcceptQueue reports nothing here: only Linux tells a listening socket's
// accept queue (TCP_INFO).
func AcceptQueue([]net.Listener) (queued, backlog int64, ok bool) { return 0, 0, false }
