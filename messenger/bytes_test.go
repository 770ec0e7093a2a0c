package messenger

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/broodhq/brood/internal/wire"
)

// A Bytes reads as json.Unmarshal reads a []byte, and refuses what it
// refuses: the fast path must not accept what the slow one would not.
func TestBytesDecodesAsJSONDoes(t *testing.T) {
	values := [][]byte{nil, {}, []byte("a"), []byte("ab"), []byte("abc"), bytes.Repeat([]byte{0xff, 0, '"', '\\'}, 1000)}
	for _, v := range values {
		data, _ := json.Marshal(v)
		own, _ := Bytes(v).MarshalJSON()
		if !bytes.Equal(own, data) {
			t.Errorf("Bytes(%.20q).MarshalJSON = %.40s; json.Marshal gives %.40s", v, own, data)
		}
		var b Bytes
		if err := b.UnmarshalJSON(data); err != nil || !bytes.Equal(b, v) {
			t.Errorf("UnmarshalJSON(%.40s) = %q, %v; want %q", data, b, err, v)
		}
	}
	inputs := []string{
		`"YWJj"`, `"YWI="`, `"YQ=="`, `""`, `null`, `"YW\u004aj"`, // escaped: the slow path's
		"\"YW\nJj\"", "\"YWJj\r\n\r\n\"", "\"YWJj\n\n\n\n\"", `"not base64!"`, `"YWJ"`, `"YQ="`, `12`, `{}`, `"`, `"YWJj`, // bad
	}
	for _, in := range inputs {
		var want []byte
		wantErr := json.Unmarshal([]byte(in), &want)
		var got Bytes
		gotErr := got.UnmarshalJSON([]byte(in))
		if (gotErr != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Errorf("UnmarshalJSON(%q) = %q, %v; json.Unmarshal gives %q, %v", in, got, gotErr, want, wantErr)
		}
	}
}

// A Bytes in a frame is the same data json.Marshal makes of the []byte,
// so a receiver that decodes into a []byte reads it as well, and one over
// the limit is refused before it is encoded.
func TestBytesFrameIsTheJSONFrame(t *testing.T) {
	m := &Messenger{maxData: 1 << 10}
	v := bytes.Repeat([]byte("brood"), 100)
	f := wire.Frame{Kind: wire.KindCall, Route: wire.ToAgent, FromPID: 7, CallID: 9, Deadline: 12345, Action: "brood.store"}
	for _, data := range []any{Bytes(v), &[]Bytes{v}[0]} {
		raw, n, err := m.frameOf(f, data)
		if err != nil || raw == nil {
			t.Fatalf("frameOf(%T) = %v, %d, %v", data, raw, n, err)
		}
		want, _ := json.Marshal(v)
		g := f
		g.Data = want
		if !bytes.Equal(raw, g.Encode()) {
			t.Fatalf("frameOf(%T) differs from the frame of json.Marshal's data", data)
		}
		p, err := wire.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		var back []byte
		if err := (Message{Data: p.Data}).Decode(&back); err != nil || !bytes.Equal(back, v) {
			t.Fatalf("decoded into a []byte: %v", err)
		}
		var own Bytes
		if err := decodeData(p.Data, &own); err != nil || !bytes.Equal(own, v) {
			t.Fatalf("decoded into a Bytes: %v", err)
		}
	}
	raw, n, err := m.frameOf(f, Bytes(make([]byte, 1<<10)))
	if raw != nil || err != nil || n <= 1<<10 {
		t.Fatalf("frameOf over the limit = %d bytes, size %d, %v; want no frame, its size", len(raw), n, err)
	}
	m.conn = &wire.Conn{}
	if _, err := m.encodeBy(wire.KindCall, wire.ToAgent, 0, 1, 0, "a", Bytes(make([]byte, 1<<10))); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("encodeBy over the limit: %v; want ErrTooLarge", err)
	}
}
