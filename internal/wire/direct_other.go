//go:build !unix

package wire

import (
	"net"
	"syscall"
)

// Without direct writes, SendNow queues like Send.
func rawConn(net.Conn) syscall.RawConn { return nil }

func tryWrite(syscall.RawConn, []byte) (int, error) { return 0, nil }
