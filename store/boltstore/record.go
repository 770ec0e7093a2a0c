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

func encodeRecord(version uint64, expires time.Time, value []byte) []byte {
	b := make([]byte, headerLen+len(value))
	binary.BigEndian.PutUint64(b, version)
	binary.BigEndian.PutUint64(b[8:], uint64(unixMilli(expires)))
	copy(b[headerLen:], value)
	return b
}

// encodeIntRecord is encodeRecord of n in decimal, in one allocation.
func encodeIntRecord(version uint64, expires time.Time, n int64) []byte {
	b := make([]byte, headerLen, headerLen+20)
	binary.BigEndian.PutUint64(b, version)
	binary.BigEndian.PutUint64(b[8:], uint64(unixMilli(expires)))
	return strconv.AppendInt(b, n, 10)
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

// expiryKey is a key's entry in the expiry index: the expiry, big-endian
// so that the index sorts by time, then the key.
func expiryKey(expires int64, key []byte) []byte {
	b := make([]byte, 8+len(key))
	binary.BigEndian.PutUint64(b, uint64(expires))
	copy(b[8:], key)
	return b
}

func beUint64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }
