package storeagent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/broodhq/brood/store"
)

// Action is the messenger action the agent's store answers. The "brood."
// prefix is the framework's.
const Action = "brood.store"

// The wire format of a call and its reply, compact binary (the messenger
// carries it as one JSON string). A request:
//
//	op byte | key | after | value | ttl ns varint | delta varint | version uvarint | limit uvarint
//
// where key, after and value are a uvarint length and the bytes. A reply:
//
//	code byte | message (code != 0) | ok byte | n varint | item count uvarint | items
//
// and an item is key | value | version uvarint | expires Unix ms varint.
type op byte

const (
	opGet op = iota + 1
	opSet
	opDelete
	opIncr
	opSetIfAbsent
	opLookup
	opCompareAndSet
	opList
)

// idempotent says whether running o twice has the effect of running it
// once, so that the client may try it again when the agent died before it
// replied. A Set run twice writes the same value twice; Incr would count
// twice, and a second CompareAndSet or SetIfAbsent would report false.
func (o op) idempotent() bool {
	switch o {
	case opGet, opLookup, opList, opSet, opDelete:
		return true
	}
	return false
}

type request struct {
	op      op
	key     string
	after   string
	value   []byte
	ttl     time.Duration
	delta   int64
	version uint64
	limit   int
}

func (r *request) encode() []byte {
	return r.appendTo(make([]byte, 0, 1+len(r.key)+len(r.after)+len(r.value)+40))
}

func (r *request) appendTo(b []byte) []byte {
	b = append(b, byte(r.op))
	b = appendString(b, r.key)
	b = appendString(b, r.after)
	b = appendBytes(b, r.value)
	b = binary.AppendVarint(b, int64(r.ttl))
	b = binary.AppendVarint(b, r.delta)
	b = binary.AppendUvarint(b, r.version)
	return binary.AppendUvarint(b, uint64(r.limit))
}

func decodeRequest(b []byte) (request, error) {
	d := decoder{b: b}
	r := request{op: op(d.byte())}
	r.key = string(d.bytes())
	r.after = string(d.bytes())
	r.value = d.bytes()
	r.ttl = time.Duration(d.varint())
	r.delta = d.varint()
	r.version = d.uvarint()
	r.limit = int(min(d.uvarint(), 1<<31))
	return r, d.end("request")
}

// Error codes of a reply; the client turns each back into its sentinel.
var codes = []error{
	nil,
	store.ErrBadKey,
	store.ErrKeyTooLong,
	store.ErrValueTooLarge,
	store.ErrBadTTL,
	store.ErrBadLimit,
	store.ErrNotInteger,
	store.ErrOverflow,
	store.ErrClosed,
	store.ErrUnavailable,
}

const codeOther = 0xff

type response struct {
	err   error // decoded: a *remoteError
	ok    bool
	n     int64
	items []store.Item
	// item is the reply's item when it has just one (a Get's or a
	// Lookup's), held here rather than in a slice of one: an allocation
	// less a read on each side. items is then nil.
	item    store.Item
	hasItem bool
}

// list is the reply's items, as a slice.
func (r *response) list() []store.Item {
	if r.hasItem {
		return []store.Item{r.item}
	}
	return r.items
}

// size is about what appendTo adds.
func (r *response) size() int {
	size := 16
	if r.err != nil {
		size += 64
	}
	if r.hasItem {
		size += len(r.item.Key) + len(r.item.Value) + 24
	}
	for _, it := range r.items {
		size += len(it.Key) + len(it.Value) + 24
	}
	return size
}

func (r *response) appendTo(b []byte) []byte {
	if r.err != nil {
		code := byte(codeOther)
		for i, e := range codes[1:] {
			if errors.Is(r.err, e) {
				code = byte(i + 1)
				break
			}
		}
		b = append(b, code)
		b = appendString(b, r.err.Error())
	} else {
		b = append(b, 0)
	}
	ok := byte(0)
	if r.ok {
		ok = 1
	}
	b = append(b, ok)
	b = binary.AppendVarint(b, r.n)
	if r.hasItem {
		b = binary.AppendUvarint(b, 1)
		return appendItem(b, &r.item)
	}
	b = binary.AppendUvarint(b, uint64(len(r.items)))
	for i := range r.items {
		b = appendItem(b, &r.items[i])
	}
	return b
}

func appendItem(b []byte, it *store.Item) []byte {
	b = appendString(b, it.Key)
	b = appendBytes(b, it.Value)
	b = binary.AppendUvarint(b, it.Version)
	var ms int64
	if !it.Expires.IsZero() {
		ms = it.Expires.UnixMilli()
	}
	return binary.AppendVarint(b, ms)
}

// decodeResponse decodes a reply to a request for key: an item whose key
// is key gets key itself, not a copy.
func decodeResponse(b []byte, key string) (response, error) {
	d := decoder{b: b}
	var r response
	if code := d.byte(); code != 0 {
		msg := string(d.bytes())
		var sentinel error
		if int(code) < len(codes) {
			sentinel = codes[code]
		}
		r.err = &remoteError{msg: msg, sentinel: sentinel}
	}
	r.ok = d.byte() == 1
	r.n = d.varint()
	n := d.uvarint()
	switch {
	case n > store.MaxListLimit:
		return response{}, fmt.Errorf("decode reply: %d items, more than a page holds", n)
	case n == 1:
		r.item, r.hasItem = d.item(key), true
	default:
		for range n {
			r.items = append(r.items, d.item(key))
		}
	}
	return r, d.end("reply")
}

func (d *decoder) item(key string) store.Item {
	var it store.Item
	if k := d.bytes(); string(k) == key {
		it.Key = key
	} else {
		it.Key = string(k)
	}
	it.Value = d.bytes()
	it.Version = d.uvarint()
	if ms := d.varint(); ms != 0 {
		it.Expires = time.UnixMilli(ms)
	}
	return it
}

// remoteError is an error the agent's store returned: its text as the agent
// wrote it, and the sentinel it wrapped, for errors.Is.
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendString(b []byte, v string) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// decoder reads the format, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errors.New("truncated")
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes returns a length-prefixed field, never nil (an empty value is a
// value). It aliases the buffer, capped so that an append copies.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return []byte{}
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) end(what string) error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d bytes left over", len(d.b))
	}
	if d.err != nil {
		return fmt.Errorf("decode store %s: %w", what, d.err)
	}
	return nil
}
