package reuseport

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// AttachSticky compiles t (see Program) and attaches it to the reuseport
// group of member, one of its sockets: the program belongs to the whole
// group, replaces the one attached before, and stays until the group's last
// socket closes or DetachSticky. order lists the group's slots in the
// kernel's index order (Group.Order for a Group).
func AttachSticky(member *os.File, t *Table, order []int) error {
	prog, err := Program(t, order)
	if err != nil {
		return err
	}
	return attach(member, prog, "sticky")
}

// attach assembles prog and attaches it to member's reuseport group.
func attach(member *os.File, prog []bpf.Instruction, what string) error {
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return fmt.Errorf("%s program: %w", what, err)
	}
	filter := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filter[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	err = control(member, func(fd int) error {
		return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF, &fprog)
	})
	switch {
	case errors.Is(err, unix.EOPNOTSUPP):
		return fmt.Errorf("attach %s program: the socket refuses reuseport filters (a Multipath TCP socket does; bind plain TCP): %w", what, err)
	case err != nil:
		return fmt.Errorf("attach %s program: %w", what, err)
	}
	return nil
}

// DetachSticky removes the program of member's group: the kernel hashes
// again.
func DetachSticky(member *os.File) error {
	err := control(member, func(fd int) error {
		return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DETACH_REUSEPORT_BPF, 0)
	})
	if err != nil {
		return fmt.Errorf("detach sticky program: %w", err)
	}
	return nil
}

// QueueDepth returns how many established connections wait in the accept
// queue of the listening socket f, and the queue's limit (the listen
// backlog). It reads TCP_INFO, which for a listener reports the queue length
// as tcpi_unacked and the backlog as tcpi_sacked.
func QueueDepth(f *os.File) (queued, backlog int, err error) {
	var info *unix.TCPInfo
	err = control(f, func(fd int) error {
		var err error
		info, err = unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("accept queue depth: %w", err)
	}
	if info.State != tcpListen {
		return 0, 0, fmt.Errorf("accept queue depth: the socket is not listening (tcp state %d)", info.State)
	}
	return int(info.Unacked), int(info.Sacked), nil
}

// stopListening takes f's socket out of its reuseport group now, even while
// another process (a worker) still holds a descriptor of it: closing only
// the master's descriptor would leave it listening, and the group's indices
// would not be what Group believes. Queued connections are reset, as on
// close.
func stopListening(f *os.File) error {
	return control(f, func(fd int) error { return unix.Shutdown(fd, unix.SHUT_RD) })
}

// tcpListen is TCP_LISTEN of include/net/tcp_states.h.
const tcpListen = 10

// control runs fn on f's descriptor and returns fn's error or Control's.
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// StickyAvailable returns nil where EnableSticky can work: on Linux, whose
// reuseport groups take SO_ATTACH_REUSEPORT_CBPF programs.
func StickyAvailable() error { return nil }
