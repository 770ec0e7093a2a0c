//go:build unix

package wire

import (
	"io"
	"net"
	"os"
	"testing"
	"time"
)

func netConn(f *os.File) (net.Conn, error) {
	defer f.Close()
	return net.FileConn(f)
}

// A descriptor sent with SendFD arrives with its frame, in order with the
// frames around it, and works at the other end.
func TestSendFDPassesADescriptor(t *testing.T) {
	a, b, err := Pair()
	if err != nil {
		t.Skip(err)
	}
	tx, err := FileConn(a, 0)
	if err != nil {
		t.Fatal(err)
	}
	rxf, err := netConn(b)
	if err != nil {
		t.Fatal(err)
	}
	rx := NewConnFD(rxf, 0)
	defer tx.Close(time.Second)
	defer rx.Close(time.Second)

	keep, give, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	before := Frame{Kind: KindMessage, Route: ToAgent, Action: "before"}
	with := Frame{Kind: KindControl, Action: "direct", Data: []byte(`{"peer":1}`)}
	tx.Send(before.Encode())
	if err := tx.SendFD(with.Encode(), give); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"before", "direct"} {
		raw, err := rx.Read()
		if err != nil {
			t.Fatal(err)
		}
		if f, _ := Parse(raw); f.Action != want {
			t.Fatalf("got %q, want %q", f.Action, want)
		}
	}
	got := rx.TakeFD()
	if got == nil {
		t.Fatal("no descriptor with the frame")
	}
	defer got.Close()
	if _, err := got.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(keep, buf); err != nil || string(buf) != "hi" {
		t.Errorf("through the passed descriptor: %q, %v", buf, err)
	}
	if rx.TakeFD() != nil {
		t.Error("a second descriptor out of one")
	}
}
