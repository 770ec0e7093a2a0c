package messenger

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// Bytes is data that is a byte slice, for handlers that carry their own
// encoding (a binary format, a pre-encoded document). On the wire it is
// what encoding/json makes of a []byte, a string of standard base64, so a
// receiver may decode it into a []byte as well; but a Bytes given to
// Send, Call or returned from a handler is written into the frame without
// reflection or a second copy, and decoding into a *Bytes (Message.Decode,
// a Call's reply) skips json.Unmarshal's scan of the whole input. For the
// cluster's store this is a tenth of the CPU of each call.
type Bytes []byte

// MarshalJSON implements json.Marshaler, for a Bytes inside other data.
func (b Bytes) MarshalJSON() ([]byte, error) {
	return appendBytesJSON(make([]byte, 0, bytesJSONLen(b)), b), nil
}

// UnmarshalJSON implements json.Unmarshaler: a JSON string of standard
// base64, or null.
func (b *Bytes) UnmarshalJSON(data []byte) error {
	v, err := decodeBytesJSON(data)
	*b = v
	return err
}

// bytesJSONLen and appendBytesJSON write what json.Marshal writes for a
// []byte: null for nil.
func bytesJSONLen(b []byte) int {
	if b == nil {
		return len("null")
	}
	return base64.StdEncoding.EncodedLen(len(b)) + 2
}

func appendBytesJSON(dst, b []byte) []byte {
	if b == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

// decodeBytesJSON decodes what appendBytesJSON (or encoding/json, for a
// []byte) wrote. A string of padded base64 without escapes, which is what
// both write, is decoded at once; anything else goes to json.Unmarshal,
// for its answer and its errors.
func decodeBytesJSON(data []byte) ([]byte, error) {
	if n := len(data); n >= 2 && data[0] == '"' && data[n-1] == '"' && (n-2)%4 == 0 {
		in := data[1 : n-1]
		pad := 0
		for i := len(in) - 1; i >= 0 && i >= len(in)-2 && in[i] == '='; i-- {
			pad++
		}
		out := make([]byte, len(in)/4*3)
		// The decoder skips \r and \n, which a JSON string may not hold
		// raw: a count short of the length's says there were some.
		if k, err := base64.StdEncoding.Decode(out, in); err == nil && k == len(out)-pad {
			return out[:k], nil
		}
	}
	var v []byte
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("decode bytes: %w", err)
	}
	return v, nil
}

// appendData appends data, encoded as JSON, to dst: a Bytes directly,
// anything else through json.Marshal.
func appendData(dst []byte, data any) ([]byte, error) {
	switch d := data.(type) {
	case Bytes:
		return appendBytesJSON(dst, d), nil
	case *Bytes:
		if d != nil {
			return appendBytesJSON(dst, *d), nil
		}
	}
	b, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	return append(dst, b...), nil
}

// dataLen is how many bytes appendData appends for data, if it can tell
// without encoding it (ok false otherwise).
func dataLen(data any) (n int, ok bool) {
	switch d := data.(type) {
	case Bytes:
		return bytesJSONLen(d), true
	case *Bytes:
		if d != nil {
			return bytesJSONLen(*d), true
		}
	}
	return 0, false
}

// decodeData unmarshals JSON data into v, a *Bytes without json.Unmarshal.
func decodeData(data []byte, v any) error {
	if b, ok := v.(*Bytes); ok {
		d, err := decodeBytesJSON(data)
		if err != nil {
			return err
		}
		*b = d
		return nil
	}
	return json.Unmarshal(data, v)
}
