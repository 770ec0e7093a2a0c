//go:build unix

package wire

import (
	"io"
	"net"
	"syscall"
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
