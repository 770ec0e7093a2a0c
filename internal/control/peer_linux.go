package control

import (
	"net"

	"golang.org/x/sys/unix"
)

// peerUID is the uid the peer had when it connected (or listened), from
// SO_PEERCRED.
func peerUID(c *net.UnixConn) (int, bool, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, false, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := rc.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, false, err
	}
	if credErr != nil {
		return 0, false, credErr
	}
	return int(cred.Uid), true, nil
}
