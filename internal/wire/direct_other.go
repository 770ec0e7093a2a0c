//go:build !unix

package wire

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// Without direct writes, SendNow queues like Send.
func rawConn(net.Conn) syscall.RawConn { return nil }

func tryWrite(syscall.RawConn, []byte) (int, error) { return 0, nil }

func reader(c net.Conn, _ syscall.RawConn) io.Reader { return c }

func writer(c net.Conn, _ syscall.RawConn) io.Writer { return c }

var errNoPair = errors.New("direct channels need a Unix system")

func sendFD(syscall.RawConn, []byte, int) (int, error) { return 0, errNoPair }

type fdReader struct {
	rc   syscall.RawConn
	conn *Conn
}

func (fdReader) Read([]byte) (int, error) { return 0, errNoPair }

// Pair is not available here.
func Pair() (*os.File, *os.File, error) { return nil, nil, errNoPair }

// FileConn is not available here.
func FileConn(*os.File, int) (*Conn, error) { return nil, errNoPair }
