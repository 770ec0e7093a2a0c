package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// socketpair returns both ends of a Unix stream socketpair, as the master
// and a child have.
func socketpair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Skipf("no socketpair here: %v", err)
	}
	var conns [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "pair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	return conns[0], conns[1]
}

func numbered(i int, size int) []byte {
	data := make([]byte, size)
	binary.LittleEndian.PutUint64(data, uint64(i))
	f := Frame{Kind: KindMessage, Route: ToAgent, Action: "n", Data: data}
	return f.Encode()
}

// Frames from one goroutine arrive in the order sent, whether each went
// through the writer goroutine (Send) or straight to the socket (SendNow),
// and a frame larger than the socket takes at once is finished by the
// writer after SendNow's partial write.
func TestSendAndSendNowKeepOrder(t *testing.T) {
	for _, size := range []int{8, 100 << 10, 3 << 20} {
		a, b := socketpair(t)
		tx, rx := NewConn(a, 0), NewConn(b, 0)
		n := 2000
		if size > 1<<20 {
			n = 20
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := range n {
				var err error
				if i%3 == 0 {
					err = tx.Send(numbered(i, size))
				} else {
					err = tx.SendNow(numbered(i, size))
				}
				for errors.Is(err, ErrBacklog) {
					time.Sleep(time.Millisecond)
					err = tx.Send(numbered(i, size))
				}
				if err != nil {
					t.Errorf("send %d: %v", i, err)
					return
				}
			}
		})
		for i := range n {
			raw, err := rx.Read()
			if err != nil {
				t.Fatalf("size %d: read %d: %v", size, i, err)
			}
			f, _ := Parse(raw)
			if got := int(binary.LittleEndian.Uint64(f.Data)); got != i || len(f.Data) != size {
				t.Fatalf("size %d: frame %d carries %d (%d bytes); want %d (%d bytes)", size, i, got, len(f.Data), i, size)
			}
		}
		wg.Wait()
		tx.Close(time.Second)
		rx.Close(time.Second)
	}
}

// Many goroutines mixing Send and SendNow never interleave the bytes of
// two frames.
func TestConcurrentSendersKeepFramesWhole(t *testing.T) {
	a, b := socketpair(t)
	tx, rx := NewConn(a, 0), NewConn(b, 0)
	const senders, each = 8, 500
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range each {
				payload := bytes.Repeat([]byte{byte(s)}, 1+i%700)
				f := Frame{Kind: KindCall, Route: ToPID, ToPID: s, Action: "x", Data: payload}
				send := tx.SendNow
				if i%2 == 0 {
					send = tx.Send
				}
				if err := send(f.Encode()); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	next := make([]int, senders)
	for range senders * each {
		raw, err := rx.Read()
		if err != nil {
			t.Fatal(err)
		}
		f, _ := Parse(raw)
		s := f.ToPID
		if len(f.Data) != 1+next[s]%700 || bytes.Count(f.Data, []byte{byte(s)}) != len(f.Data) {
			t.Fatalf("sender %d frame %d: %d bytes, not all %d", s, next[s], len(f.Data), s)
		}
		next[s]++
	}
	wg.Wait()
	tx.Close(time.Second)
	rx.Close(time.Second)
}

func TestSendNowAfterPeerClosed(t *testing.T) {
	a, b := socketpair(t)
	tx := NewConn(a, 0)
	b.Close()
	var err error
	for range 100 {
		if err = tx.SendNow(numbered(0, 8)); err != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if !errors.Is(err, ErrClosed) {
		t.Errorf("SendNow to a closed peer: %v; want ErrClosed", err)
	}
	tx.Close(time.Second)
}

// A corked Conn writes nothing, for SendNow or Send, until Uncork, then
// everything in the order sent, in one write when the socket takes it; a
// frame larger than the socket takes at once is finished by the writer.
func TestCorkHoldsRepliesUntilUncork(t *testing.T) {
	for _, size := range []int{8, 3 << 20} {
		a, b := socketpair(t)
		tx, rx := NewConn(a, 0), NewConn(b, 0)
		tx.Cork()
		for i := range 3 {
			if err := tx.SendNow(numbered(i, size)); err != nil {
				t.Fatal(err)
			}
		}
		got := make(chan int, 16)
		go func() {
			for {
				raw, err := rx.Read()
				if err != nil {
					close(got)
					return
				}
				f, _ := Parse(raw)
				got <- int(binary.LittleEndian.Uint64(f.Data))
			}
		}()
		// none: nothing arrives for a while; frames: want..to-1 arrive in order.
		none := func() {
			t.Helper()
			select {
			case i := <-got:
				t.Fatalf("size %d: frame %d arrived while corked", size, i)
			case <-time.After(100 * time.Millisecond):
			}
		}
		want := 0
		frames := func(to int) {
			t.Helper()
			for ; want < to; want++ {
				select {
				case i := <-got:
					if i != want {
						t.Fatalf("size %d: got frame %d, want %d", size, i, want)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("size %d: frame %d not delivered after Uncork", size, want)
				}
			}
		}
		none()
		tx.Uncork()
		tx.Uncork() // a second is a no-op
		frames(3)
		// Corked again: a Send waits for Uncork too, after the reply
		// queued before it.
		tx.Cork()
		if err := tx.SendNow(numbered(3, size)); err != nil {
			t.Fatal(err)
		}
		if err := tx.Send(numbered(4, size)); err != nil {
			t.Fatal(err)
		}
		none()
		tx.Uncork()
		frames(5)
		tx.Close(time.Second)
		rx.Close(time.Second)
	}
}
