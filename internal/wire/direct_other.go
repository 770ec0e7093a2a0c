//go:build !unix

package wire

import (
	"io"
	"net"
	"syscall"
)

// Without direct writes, SendNow queues like Send.
func rawConn(net.Conn) syscall.RawConn { return nil }

func tryWrite(syscall.RawConn, []byte) (int, error) { return 0, nil }

func reader(c net.Conn, _ syscall.RawConn) io.Reader { return c }

func writer(c net.Conn, _ syscall.RawConn) io.Writer { return c }
