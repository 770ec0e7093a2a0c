package protocol

import (
	"errors"
	"testing"
	"time"

	"github.com/broodhq/brood/internal/wire"
)

func TestDecodePolicy(t *testing.T) {
	parse := func(f *wire.Frame) wire.Frame {
		p, err := wire.Parse(f.Encode())
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	var stop StopMsg
	if err := Decode(parse(StopFrame(1500*time.Millisecond, true)), &stop); err != nil || stop.TimeoutMS != 1500 || !stop.HandedOver {
		t.Errorf("stop frame: %+v, %v; want 1500 ms, handed over", stop, err)
	}
	var hb HeartbeatMsg
	if err := Decode(parse(Control(Heartbeat, nil)), &hb); err != nil || hb != (HeartbeatMsg{}) {
		t.Errorf("no data: %+v, %v; want the zero value and no error", hb, err)
	}
	bad := wire.Frame{Kind: wire.KindControl, Action: Heartbeat, Data: []byte(`{"requests":"many"}`)}
	if err := Decode(bad, &hb); !errors.Is(err, ErrMalformed) {
		t.Errorf("garbled data: %v; want ErrMalformed", err)
	}
}

func TestWaitersMatchAnswersByID(t *testing.T) {
	var w Waiters[string]
	id1, c1, remove1 := w.Add(1)
	id2, _, remove2 := w.Add(1)
	if id1 == id2 {
		t.Fatalf("two requests got the same id %d", id1)
	}
	w.Get(id1) <- "one"
	if got := <-c1; got != "one" {
		t.Errorf("got %q; want one", got)
	}
	remove1()
	remove2()
	if w.Get(id1) != nil || w.Get(id2) != nil {
		t.Error("removed requests still found")
	}
}
