//go:build linux

package metrics

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// AcceptQueue returns how many connections wait in the accept queues of
// the listening sockets lns, and how many they may hold (the backlog),
// from TCP_INFO; ok is false where the sockets do not tell.
func AcceptQueue(lns []net.Listener) (queued, backlog int64, ok bool) {
	for _, ln := range lns {
		sc, isSys := ln.(syscall.Conn)
		if !isSys {
			return 0, 0, false
		}
		raw, err := sc.SyscallConn()
		if err != nil {
			return 0, 0, false
		}
		var info *unix.TCPInfo
		var ierr error
		if err := raw.Control(func(fd uintptr) { info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil || ierr != nil {
			return 0, 0, false
		}
		// For a listening socket the kernel reports the accept queue in
		// unacked and its bound in sacked.
		queued += int64(info.Unacked)
		backlog += int64(info.Sacked)
	}
	return queued, backlog, len(lns) > 0
}
