//go:build unix

package wire

import (
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/broodhq/brood/internal/proc"
)

func rawConn(c net.Conn) syscall.RawConn {
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			return rc
		}
	}
	return nil
}

// tryWrite makes one write on the non-blocking descriptor and returns how
// much it took; a full socket takes nothing, and is not an error.
func tryWrite(rc syscall.RawConn, b []byte) (int, error) {
	var n int
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		n, werr = write(fd, b)
		return true // never wait for the peer: the writer goroutine will
	})
	switch {
	case err != nil:
		return 0, err
	case werr == syscall.EAGAIN || werr == syscall.EINTR:
		return 0, nil
	case werr != nil:
		return 0, werr
	}
	return max(n, 0), nil
}

// rawReader reads the descriptor with the read of read_linux.go (or
// syscall.Read elsewhere), waiting in the netpoller when nothing is there.
type rawReader struct{ rc syscall.RawConn }

func (r rawReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var rerr error
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			n, rerr = read(fd, p)
			if rerr != syscall.EINTR {
				return rerr != syscall.EAGAIN // EAGAIN: wait until readable
			}
		}
	})
	return readResult(n, err, rerr)
}

// readResult is a Read's answer from what the poller (err) and the read
// (rerr, n) said: a read of 0 bytes is the peer's end.
func readResult(n int, err, rerr error) (int, error) {
	switch {
	case err != nil:
		return 0, err
	case rerr != nil:
		return 0, rerr
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// rawWriter writes all of p, waiting in the netpoller while the socket is
// full: the writer goroutine's blocking write, on the raw path.
type rawWriter struct{ rc syscall.RawConn }

func (w rawWriter) Write(p []byte) (int, error) {
	done := 0
	var werr error
	err := w.rc.Write(func(fd uintptr) bool {
		for done < len(p) {
			n, err := write(fd, p[done:])
			switch err {
			case nil:
				done += n
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false // wait until writable
			default:
				werr = err
				return true
			}
		}
		return true
	})
	if err == nil {
		err = werr
	}
	return done, err
}

// reader and writer are what Conn reads frames from and writes batches
// to: the descriptor itself when it has one, so that both take the raw
// path.
func reader(c net.Conn, rc syscall.RawConn) io.Reader {
	if rc == nil {
		return c
	}
	return rawReader{rc}
}

func writer(c net.Conn, rc syscall.RawConn) io.Writer {
	if rc == nil {
		return c
	}
	return rawWriter{rc}
}

// sendFD writes the start of b with fd attached, waiting while the socket
// is full, and returns how much of b it took (at least one byte).
func sendFD(rc syscall.RawConn, b []byte, fd int) (int, error) {
	var n int
	var werr error
	oob := unix.UnixRights(fd)
	err := rc.Write(func(s uintptr) bool {
		for {
			n, werr = unix.SendmsgN(int(s), b, oob, nil, 0)
			switch werr {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			}
			return true
		}
	})
	if err == nil {
		err = werr
	}
	return n, err
}

// fdReader is rawReader for a channel that receives descriptors: it keeps
// each in its Conn, close-on-exec, for TakeFD.
type fdReader struct {
	rc   syscall.RawConn
	conn *Conn
}

func (r fdReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n, oobn int
	var rerr error
	oob := make([]byte, unix.CmsgSpace(4*8))
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			n, oobn, _, _, rerr = unix.Recvmsg(int(fd), p, oob, recvFlags)
			if rerr != unix.EINTR {
				return rerr != unix.EAGAIN
			}
		}
	})
	if oobn > 0 {
		if msgs, perr := unix.ParseSocketControlMessage(oob[:oobn]); perr == nil {
			for _, m := range msgs {
				fds, _ := unix.ParseUnixRights(&m)
				for _, fd := range fds {
					unix.CloseOnExec(fd) // where recvFlags could not
					r.conn.keepFD(os.NewFile(uintptr(fd), "brood-direct"))
				}
			}
		}
	}
	return readResult(n, err, rerr)
}

// Pair returns both ends of a new socketpair, close-on-exec, with room for
// bursts: the direct channel between a worker and the agent.
func Pair() (*os.File, *os.File, error) { return proc.SocketpairFiles("brood-direct") }

// FileConn makes a Conn of one end of a Pair, received or kept.
func FileConn(f *os.File, maxFrame int) (*Conn, error) {
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("direct channel: %w", err)
	}
	return NewConn(c, maxFrame), nil
}
