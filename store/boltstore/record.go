package boltstore

import (
	"encoding/binary"
	"strconv"
	"time"
)

// A key's record in the kv bucket: version, expiry in Unix milliseconds (0:
// none), then the value. Version and expiry are fixed-size so that reading
// them never copies the value.
const headerLen = 16

// newRecord makes the record of value, its header left to setHeader: a
// write's caller makes it (the copy of a value the caller may change once
// it returns), the writer gives it its version.
func newRecord(value []byte) []byte {
	b := make([]byte, headerLen+len(value))
	copy(b[headerLen:], value)
	return b
}

// newIntRecord is newRecord of n in decimal, in one allocation.
func newIntRecord(n int64) []byte {
	return strconv.AppendInt(make([]byte, headerLen, headerLen+20), n, 10)
}

// setHeader fills in the header of a record from newRecord, before anyone
// else sees it: a record is never changed after.
func setHeader(b []byte, version uint64, expires time.Time) {
	binary.BigEndian.PutUint64(b, version)
	binary.BigEndian.PutUint64(b[8:], uint64(unixMilli(expires)))
}

// record is a view of a stored record; its value aliases bbolt's memory,
// valid only inside the transaction.
type record struct {
	version uint64
	expires int64 // Unix ms; 0: none
	value   []byte
}

func decodeRecord(b []byte) (record, bool) {
	if len(b) < headerLen {
		return record{}, false
	}
	return record{
		version: binary.BigEndian.Uint64(b),
		expires: int64(binary.BigEndian.Uint64(b[8:])),
		value:   b[headerLen:],
	}, true
}

func (r record) expired(nowMs int64) bool { return r.expires != 0 && r.expires <= nowMs }

func (r record) expiresAt() time.Time {
	if r.expires == 0 {
		return time.Time{}
	}
	return time.UnixMilli(r.expires)
}

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// appendExpiryKey appends a key's entry in the expiry index: the expiry, big-endian
// so that the index sorts by time, then the key.
func appendExpiryKey(b []byte, expires int64, key []byte) []byte {
	return append(binary.BigEndian.AppendUint64(b, uint64(expires)), key...)
}

func beUint64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }
