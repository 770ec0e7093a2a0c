package boltstore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// The write-ahead log, in the file next to the database (path + ".log"):
// a header, then one frame per group of writes,
//
//	payload length uint32 | CRC-32C of the payload uint32 | payload
//
// where the payload is the group's changes in order, each
//
//	kind byte (logPut, logDelete) | key length uvarint | key | (put) record length uvarint | record
//
// and a record is the kv bucket's (record.go). A group is acknowledged once
// its frame is written (and with Options.Sync, fsynced). A frame is the
// unit of recovery: one cut short or damaged (the process died in the
// write) ends the log there, and the groups before it are all there is.
//
// A checkpoint writes what the log holds into the database in one bbolt
// commit, then empties the log back to its header.
var logHeader = []byte("brood-store-log/1\n")

const (
	logPut    = 1
	logDelete = 2
	frameHead = 8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// wal is the log file, written only by the writer goroutine (and Open).
type wal struct {
	f    *os.File
	path string
	size int64 // the end of the last whole frame: where the next one goes
	sync bool

	// raw: appends may take the raw system call (pwrite_linux.go), and
	// do unless now is before plainUntil.
	raw        bool
	now        func() time.Time
	plainUntil time.Time
}

// openLog opens (creating) the log at path and calls apply for every
// change of every whole frame in it, in order; rec (nil for a delete)
// aliases the frame, valid until apply returns. A tail that is not a whole
// frame is cut off. A file that does not start with the header fails with
// ErrForeign, naming it.
func openLog(path string, sync bool, apply func(kind byte, key string, rec []byte)) (*wal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	l := &wal{f: f, path: path, sync: sync, raw: rawAppends(f), now: time.Now}
	if err := l.replay(apply); err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

// replay reads the log frame by frame, each into the same buffer: its
// memory is the largest frame's, not the log's.
func (l *wal) replay(apply func(kind byte, key string, rec []byte)) error {
	fi, err := l.f.Stat()
	if err != nil {
		return fmt.Errorf("boltstore: read %s: %w", l.path, err)
	}
	end := fi.Size()
	r := bufio.NewReaderSize(l.f, 64<<10)
	buf := make([]byte, len(logHeader), 4<<10)
	switch n, err := io.ReadFull(r, buf); {
	case (err == io.EOF || err == io.ErrUnexpectedEOF) && string(buf[:n]) == string(logHeader[:n]):
		// New, or its creation was cut short.
		return l.reset()
	case err != nil && err != io.EOF && err != io.ErrUnexpectedEOF:
		return fmt.Errorf("boltstore: read %s: %w", l.path, err)
	case err != nil || string(buf) != string(logHeader):
		return fmt.Errorf("%w: %s is not a brood store log: move the file away (or delete it, losing the writes not yet in %s)",
			ErrForeign, l.path, l.path[:len(l.path)-len(".log")])
	}
	off := int64(len(logHeader))
	var head [frameHead]byte
	for end-off >= frameHead {
		if _, err := io.ReadFull(r, head[:]); err != nil {
			if err == io.ErrUnexpectedEOF || err == io.EOF {
				break // shorter than it was: torn
			}
			return fmt.Errorf("boltstore: read %s: %w", l.path, err)
		}
		// Compared as uint64: a length past int's range (32-bit) is torn
		// too, and a torn one past the file's end is never allocated.
		n64 := uint64(binary.LittleEndian.Uint32(head[:]))
		sum := binary.LittleEndian.Uint32(head[4:])
		if n64 > uint64(end-off-frameHead) {
			break
		}
		n := int(n64)
		buf = slices.Grow(buf[:0], n)[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			if err == io.ErrUnexpectedEOF || err == io.EOF {
				break
			}
			return fmt.Errorf("boltstore: read %s: %w", l.path, err)
		}
		if crc32.Checksum(buf, castagnoli) != sum {
			break
		}
		if err := decodeFrame(buf, apply); err != nil {
			return fmt.Errorf("%w: %s: frame at offset %d: %w: move the file away (or delete it, losing the writes not yet in the database)", ErrForeign, l.path, off, err)
		}
		off += frameHead + int64(n)
	}
	l.size = off
	if off < end {
		// A torn tail: no write in it was acknowledged.
		if err := l.f.Truncate(l.size); err != nil {
			return fmt.Errorf("boltstore: cut the torn end of %s: %w", l.path, err)
		}
	}
	return nil
}

// decodeFrame calls apply for each change in the frame p; the key is a
// copy, the record aliases p, valid until apply returns.
func decodeFrame(p []byte, apply func(kind byte, key string, rec []byte)) error {
	d := frameDecoder{b: p}
	for len(d.b) > 0 && d.err == nil {
		kind := d.byte()
		key := string(d.bytes())
		var rec []byte
		switch kind {
		case logPut:
			rec = d.bytes()
			if d.err == nil && len(rec) < headerLen {
				return errors.New("short record")
			}
		case logDelete:
		default:
			return fmt.Errorf("unknown change %d", kind)
		}
		if d.err == nil {
			apply(kind, key, rec)
		}
	}
	return d.err
}

type frameDecoder struct {
	b   []byte
	err error
}

func (d *frameDecoder) byte() byte {
	if len(d.b) == 0 {
		d.err = errors.New("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// bytes returns a length-prefixed field, aliasing the frame.
func (d *frameDecoder) bytes() []byte {
	n, k := binary.Uvarint(d.b)
	if k <= 0 || n > uint64(len(d.b)-k) {
		d.err = errors.New("truncated")
		d.b = nil
		return nil
	}
	v := d.b[k : k+int(n) : k+int(n)]
	d.b = d.b[k+int(n):]
	return v
}

// startFrame begins a frame in buf, its header to be filled by append.
func startFrame(buf []byte) []byte {
	return append(buf[:0], make([]byte, frameHead)...)
}

func appendPut(buf []byte, key string, rec []byte) []byte {
	buf = append(buf, logPut)
	buf = binary.AppendUvarint(buf, uint64(len(key)))
	buf = append(buf, key...)
	buf = binary.AppendUvarint(buf, uint64(len(rec)))
	return append(buf, rec...)
}

func appendDelete(buf []byte, key string) []byte {
	buf = append(buf, logDelete)
	buf = binary.AppendUvarint(buf, uint64(len(key)))
	return append(buf, key...)
}

// append writes the frame in buf (begun by startFrame) at the log's end,
// fsynced with Options.Sync. If that fails, the log's end stays where it
// was: the next frame overwrites what this one left.
func (l *wal) append(frame []byte) error {
	payload := frame[frameHead:]
	binary.LittleEndian.PutUint32(frame, uint32(len(payload)))
	binary.LittleEndian.PutUint32(frame[4:], crc32.Checksum(payload, castagnoli))
	err := l.writeAt(frame, l.size)
	if err == nil && l.sync {
		err = l.f.Sync()
	}
	if err != nil {
		// Best effort: a frame left whole (its fsync failed) would be
		// replayed, though its writes were refused.
		l.f.Truncate(l.size)
		return err
	}
	l.size += int64(len(frame))
	return nil
}

// reset empties the log to its header, once what it held is in the
// database.
func (l *wal) reset() error {
	created := l.size == 0
	if created {
		// A new file: its header first. Cut short, it is new again.
		if _, err := l.f.WriteAt(logHeader, 0); err != nil {
			return fmt.Errorf("boltstore: write %s: %w", l.path, err)
		}
	}
	// Cut back to the header, which stays: a failure leaves the file as it
	// was, whose frames are already in the database (replaying them again
	// writes the same records).
	if err := l.f.Truncate(int64(len(logHeader))); err != nil {
		return fmt.Errorf("boltstore: empty %s: %w", l.path, err)
	}
	// Cut, whatever the fsync's fate: the next frame goes after the header,
	// not after a hole of zeros, which replay would read as frames.
	l.size = int64(len(logHeader))
	if l.sync {
		if err := l.f.Sync(); err != nil {
			return fmt.Errorf("boltstore: sync %s: %w", l.path, err)
		}
		if created {
			// The file's name too: without it, a power cut can lose the
			// log and the writes acknowledged in it.
			if err := syncDir(filepath.Dir(l.path)); err != nil {
				return fmt.Errorf("boltstore: sync the directory of %s: %w", l.path, err)
			}
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
