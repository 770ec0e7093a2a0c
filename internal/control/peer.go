package control

import (
	"errors"
	"fmt"
	"net"
	"os"
)

// ErrUntrusted means the process at the other end of a control connection
// runs as another user: for broodctl, not our master (someone put their
// socket where ours should be); for the master, not one of its operators.
var ErrUntrusted = errors.New("control socket peer runs as another user")

// checkPeer accepts a peer that runs as our uid or as root, the only
// users who could send our master signals too. Where the kernel cannot
// say (see peerUID), the socket's file mode and directory are all there is.
func checkPeer(c net.Conn) error {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil
	}
	uid, known, err := peerUID(uc)
	if err != nil {
		return fmt.Errorf("read the peer's credentials: %w", err)
	}
	if !known || uid == os.Getuid() || uid == 0 {
		return nil
	}
	return &peerError{uid: uid}
}

type peerError struct{ uid int }

func (e *peerError) Error() string {
	return fmt.Sprintf("%v: uid %d, neither us (uid %d) nor root", ErrUntrusted, e.uid, os.Getuid())
}

func (e *peerError) Unwrap() error { return ErrUntrusted }
