package metrics

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// A worker's report is whole (every family, length-delimited protobuf)
// or, when the agent said which of the worker's reports it holds, a delta
// against that one: most families of a large registry are byte for byte
// what they were a scrape ago, and a counter that moved changes a few
// bytes of each series' encoding, not its labels. What the agent decodes
// from the messenger's JSON is then kilobytes instead of the whole
// registry (measured: the JSON decoding of 4 whole reports of 10,000
// series was most of the agent's CPU in a scrape).
//
// A delta is one entry per family of the new report, in its order:
//
//	deltaSame  uvarint i             the base's family i, unchanged
//	deltaWhole uvarint n, n bytes    a family encoded whole
//	deltaPatch uvarint i, uvarint k, k × (uvarint skip, uvarint n, n bytes)
//	                                 the base's family i with k ranges
//	                                 replaced: skip bytes kept, n bytes
//	                                 replaced; the rest kept (same length)
const (
	deltaSame byte = iota
	deltaWhole
	deltaPatch
)

// encoded is one report's families, each encoded on its own.
type encoded struct {
	seq     uint64
	buf     []byte   // the length-delimited families, back to back
	chunks  [][]byte // each family's encoding, in buf (without its length)
	names   []string
	index   map[string]int // by name
	exposed bool           // buf went out as a report's Data: never reuse it
}

// encodeEach encodes fams as length-delimited protobuf into buf (reused),
// keeping where each family is.
func encodeEach(buf []byte, fams []*dto.MetricFamily) (*encoded, error) {
	e := &encoded{chunks: make([][]byte, 0, len(fams)), names: make([]string, 0, len(fams)), index: make(map[string]int, len(fams))}
	opts := proto.MarshalOptions{UseCachedSize: true}
	type place struct{ start, n int }
	places := make([]place, 0, len(fams))
	b := buf[:0]
	for _, mf := range fams {
		simple := simpleFamily(mf)
		var n int
		if simple {
			n = simpleFamilySize(mf)
		} else {
			n = proto.Size(mf)
		}
		b = protowire.AppendVarint(b, uint64(n))
		start := len(b)
		if simple {
			b = appendSimpleFamily(b, mf)
		} else {
			var err error
			if b, err = opts.MarshalAppend(b, mf); err != nil {
				return nil, fmt.Errorf("encode metric family %s: %w", mf.GetName(), err)
			}
		}
		if len(b)-start != n {
			return nil, fmt.Errorf("encode metric family %s: it changed while it was encoded", mf.GetName())
		}
		places = append(places, place{start, n})
		e.index[mf.GetName()] = len(places) - 1
		e.names = append(e.names, mf.GetName())
	}
	// Sliced only now: appending may have moved b.
	for _, p := range places {
		e.chunks = append(e.chunks, b[p.start:p.start+p.n:p.start+p.n])
	}
	e.buf = b
	return e, nil
}

// minPatchGap is the shortest run of equal bytes a patch keeps rather than
// replaces: an op costs about two bytes.
const minPatchGap = 4

// appendDelta appends to dst the delta of e against base.
func appendDelta(dst []byte, base, e *encoded) []byte {
	for i, c := range e.chunks {
		j, ok := base.index[e.names[i]]
		if !ok {
			dst = appendWhole(dst, c)
			continue
		}
		old := base.chunks[j]
		if len(old) != len(c) {
			dst = appendWhole(dst, c)
			continue
		}
		ops := diff(old, c)
		if len(ops) == 0 {
			dst = append(dst, deltaSame)
			dst = binary.AppendUvarint(dst, uint64(j))
			continue
		}
		if patchSize(ops) >= len(c)/2 {
			dst = appendWhole(dst, c)
			continue
		}
		dst = append(dst, deltaPatch)
		dst = binary.AppendUvarint(dst, uint64(j))
		dst = binary.AppendUvarint(dst, uint64(len(ops)))
		pos := 0
		for _, op := range ops {
			dst = binary.AppendUvarint(dst, uint64(op.from-pos))
			dst = binary.AppendUvarint(dst, uint64(op.to-op.from))
			dst = append(dst, c[op.from:op.to]...)
			pos = op.to
		}
	}
	return dst
}

func appendWhole(dst, c []byte) []byte {
	dst = append(dst, deltaWhole)
	dst = binary.AppendUvarint(dst, uint64(len(c)))
	return append(dst, c...)
}

// span is a range of bytes that differ.
type span struct{ from, to int }

func patchSize(ops []span) int {
	n := 0
	for _, op := range ops {
		n += 4 + op.to - op.from
	}
	return n
}

// diff returns the ranges where a and b (of one length) differ, merging
// ranges less than minPatchGap apart. It compares eight bytes at a time
// where they are equal, which most are.
func diff(a, b []byte) []span {
	var ops []span
	n := len(a)
	i := 0
	for i < n {
		for i+8 <= n && binary.LittleEndian.Uint64(a[i:]) == binary.LittleEndian.Uint64(b[i:]) {
			i += 8
		}
		for i < n && a[i] == b[i] {
			i++
		}
		if i >= n {
			break
		}
		from := i
		// Extend while the bytes differ, or the equal run is too short to
		// be worth an op.
		end := i
		for j := i; j < n; j++ {
			if a[j] != b[j] {
				end = j + 1
			} else if j-end >= minPatchGap-1 {
				break
			}
		}
		ops = append(ops, span{from, end})
		i = end
	}
	return ops
}

var errDelta = errors.New("decode metric families: malformed delta")

// applyDelta rebuilds a report's families from a delta against base (the
// families of the report it names). from[i] is j if family i is base's
// family j unchanged (chunks[i] is then base's), else -1.
func applyDelta(base [][]byte, data []byte) (chunks [][]byte, from []int, err error) {
	uv := func() (int, bool) {
		v, k := binary.Uvarint(data)
		if k <= 0 || v > uint64(len(data))+uint64(1<<40) {
			return 0, false
		}
		data = data[k:]
		return int(v), true
	}
	for len(data) > 0 {
		tag := data[0]
		data = data[1:]
		switch tag {
		case deltaSame:
			j, ok := uv()
			if !ok || j >= len(base) {
				return nil, nil, errDelta
			}
			chunks, from = append(chunks, base[j]), append(from, j)
		case deltaWhole:
			n, ok := uv()
			if !ok || n > len(data) {
				return nil, nil, errDelta
			}
			// A copy, as a patch's is: the aggregator keeps a chunk for
			// as long as its family does not change, and a slice of data
			// would keep the whole delta alive with it, one delta per
			// family at worst.
			chunks, from = append(chunks, bytes.Clone(data[:n])), append(from, -1)
			data = data[n:]
		case deltaPatch:
			j, ok := uv()
			if !ok || j >= len(base) {
				return nil, nil, errDelta
			}
			k, ok := uv()
			if !ok {
				return nil, nil, errDelta
			}
			c := append([]byte(nil), base[j]...)
			pos := 0
			for range k {
				skip, ok1 := uv()
				n, ok2 := uv()
				if !ok1 || !ok2 || skip > len(c)-pos || n > len(c)-pos-skip || n > len(data) {
					return nil, nil, errDelta
				}
				pos += skip
				copy(c[pos:], data[:n])
				pos += n
				data = data[n:]
			}
			chunks, from = append(chunks, c), append(from, -1)
		default:
			return nil, nil, errDelta
		}
	}
	return chunks, from, nil
}
