package boltstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Replay reads the log a frame at a time: what it allocates is about its
// largest frame, however long the log, and every change reaches apply, in
// order.
func TestReplayHoldsOneFrameAtATime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db.log")
	l, err := openLog(path, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	type change struct {
		kind byte
		key  string
		rec  []byte
	}
	const frames, largest = 2000, 256 << 10
	var want []change
	var frame []byte
	for i := range frames {
		size := 4 << 10
		if i == frames/2 {
			size = largest
		}
		c := change{logPut, fmt.Sprint("k", i%10), bytes.Repeat([]byte{byte(i)}, size)}
		frame = appendPut(startFrame(frame), c.key, c.rec)
		want = append(want, c)
		if i%7 == 0 {
			frame = appendDelete(frame, c.key)
			want = append(want, change{logDelete, c.key, nil})
		}
		if err := l.append(frame); err != nil {
			t.Fatal(err)
		}
	}
	l.f.Close()
	logBytes := l.size

	var got int
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	l, err = openLog(path, false, func(kind byte, key string, rec []byte) {
		if got < len(want) {
			if w := want[got]; kind != w.kind || key != w.key || !bytes.Equal(rec, w.rec) || (rec == nil) != (w.rec == nil) {
				t.Errorf("change %d: %d %s, %d bytes; want %d %s, %d bytes", got, kind, key, len(rec), w.kind, w.key, len(w.rec))
			}
		}
		got++
	})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	l.f.Close()
	if got != len(want) || l.size != logBytes {
		t.Fatalf("replayed %d changes, %d bytes; want %d, %d", got, l.size, len(want), logBytes)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Fatalf("replay of a %d-byte log whose largest frame is %d bytes allocated %d bytes; want about that frame", logBytes, largest, alloc)
	}
}

// What replay makes of logs that are not whole: a header cut short is a new
// log; a frame cut short, or whose CRC fails, or whose length runs past the
// end, is a torn tail, cut off; a frame whose CRC holds but whose changes do
// not decode, or a file that is not a log, fails with ErrForeign.
func TestReplayOfDamagedLogs(t *testing.T) {
	good := appendPut(startFrame(nil), "k", make([]byte, headerLen))
	frame := func(payload ...byte) []byte {
		f := append(startFrame(nil), payload...)
		binary.LittleEndian.PutUint32(f, uint32(len(payload)))
		binary.LittleEndian.PutUint32(f[4:], crc32.Checksum(payload, castagnoli))
		return f
	}
	for _, c := range []struct {
		name    string
		content []byte
		size    int    // of the log once replayed
		changes int    // reaching apply
		err     string // ErrForeign's, naming this
	}{
		{"empty", nil, len(logHeader), 0, ""},
		{"header cut short", logHeader[:5], len(logHeader), 0, ""},
		{"foreign", []byte("not a log at all, no"), 0, 0, "is not a brood store log"},
		{"foreign and short", []byte("brood-x"), 0, 0, "is not a brood store log"},
		{"frame cut short", join(logHeader, frame(good[frameHead:]...), frame(good[frameHead:]...)[:10]), len(logHeader) + len(good), 1, ""},
		{"head cut short", join(logHeader, frame(good[frameHead:]...), []byte{1, 2, 3}), len(logHeader) + len(good), 1, ""},
		{"length past the end", join(logHeader, frame(good[frameHead:]...), []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1}), len(logHeader) + len(good), 1, ""},
		{"CRC fails", join(logHeader, frame(good[frameHead:]...), flip(frame(good[frameHead:]...))), len(logHeader) + len(good), 1, ""},
		{"undecodable", join(logHeader, frame(good[frameHead:]...), frame(9, 1, 'k')), 0, 1, fmt.Sprintf("frame at offset %d: unknown change 9", len(logHeader)+len(good))},
		{"short record", join(logHeader, frame(logPut, 1, 'k', 2, 0, 0)), 0, 0, fmt.Sprintf("frame at offset %d: short record", len(logHeader))},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "store.db.log")
			if c.content != nil {
				if err := os.WriteFile(path, c.content, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			changes := 0
			l, err := openLog(path, false, func(byte, string, []byte) { changes++ })
			if c.err != "" {
				if !errors.Is(err, ErrForeign) || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), path) {
					t.Fatalf("openLog: %v; want ErrForeign naming %s: %s", err, path, c.err)
				}
			} else if err != nil {
				t.Fatal(err)
			} else {
				l.f.Close()
			}
			if changes != c.changes {
				t.Errorf("%d changes applied; want %d", changes, c.changes)
			}
			if c.err != "" {
				return
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if l.size != int64(c.size) || len(b) != c.size || string(b[:len(logHeader)]) != string(logHeader) {
				t.Fatalf("log once replayed: size %d, file of %d bytes starting %q; want %d, starting with the header", l.size, len(b), b[:min(len(b), len(logHeader))], c.size)
			}
		})
	}
}

func join(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// flip damages the last byte of a frame's payload.
func flip(f []byte) []byte {
	f[len(f)-1] ^= 1
	return f
}
