package reuseport

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// The sticky program is a classic BPF program for SO_ATTACH_REUSEPORT_CBPF.
// The kernel runs it for each new connection (each SYN) on the group and uses
// its result as the index of the socket that gets the connection; an index
// past the end of the group makes the kernel fall back to its own hash.
//
// The kernel runs it with the packet's data pointer past the TCP header, so
// the IP header is read with loads relative to SKF_NET_OFF, the start of the
// network header. The program:
//
//  1. reads the IP version from the first byte of the network header;
//  2. hashes the source address (IPv4: bytes 12..15; IPv6: bytes 8..23) with
//     the same function as Bucket;
//  3. keeps the top 8 bits, the bucket;
//  4. walks a binary tree of comparisons over the table's runs of buckets
//     that go to the same socket, and returns that socket's index.
//
// Any other version returns missIndex, which the kernel answers with its hash.

// skfNetOff is SKF_NET_OFF (-0x100000) as the unsigned offset of a load.
const skfNetOff = 0xfff00000

// missIndex is past the end of every group: the kernel hashes instead.
const missIndex = 0xffffffff

// maxProgram is the kernel's limit on a classic program (BPF_MAXINSNS).
const maxProgram = 4096

// Program compiles t for a reuseport group whose sockets, in the kernel's
// index order, serve the slots order[0], order[1], ... Every slot of t must
// be in order.
func Program(t *Table, order []int) ([]bpf.Instruction, error) {
	return program(t, order, skfNetOff)
}

// program reads the network header at netBase: skfNetOff in the kernel, 0
// when a test runs it in a VM on a buffer that starts with the IP header.
func program(t *Table, order []int, netBase uint32) ([]bpf.Instruction, error) {
	index := make(map[int]uint32, len(order))
	for i, slot := range order {
		index[slot] = uint32(i)
	}
	var runs []run
	for b := range Buckets {
		i, ok := index[t.owner[b]]
		if !ok {
			if len(t.count) == 0 {
				i = missIndex
			} else {
				return nil, fmt.Errorf("sticky program: slot %d of the table has no socket in the group %v", t.owner[b], order)
			}
		}
		if len(runs) == 0 || runs[len(runs)-1].index != i {
			runs = append(runs, run{b, i})
		}
	}
	word := func(off uint32) bpf.Instruction {
		return bpf.LoadAbsolute{Off: netBase + off, Size: 4}
	}
	mix := []bpf.Instruction{
		bpf.TAX{}, bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 16}, bpf.ALUOpX{Op: bpf.ALUOpXor},
		bpf.ALUOpConstant{Op: bpf.ALUOpMul, Val: mixMul1},
		bpf.TAX{}, bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 15}, bpf.ALUOpX{Op: bpf.ALUOpXor},
		bpf.ALUOpConstant{Op: bpf.ALUOpMul, Val: mixMul2},
		bpf.TAX{}, bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 16}, bpf.ALUOpX{Op: bpf.ALUOpXor},
	}
	// h = mix(0 ^ w0), then h = mix(h ^ wi): X holds h while A loads wi.
	v4 := append([]bpf.Instruction{word(12)}, mix...)
	v6 := append([]bpf.Instruction{word(8)}, mix...)
	for off := uint32(12); off <= 20; off += 4 {
		v6 = append(v6, bpf.TAX{}, word(off), bpf.ALUOpX{Op: bpf.ALUOpXor})
		v6 = append(v6, mix...)
	}
	v6 = append(v6, bpf.Jump{Skip: uint32(len(v4))})

	p := []bpf.Instruction{
		bpf.LoadAbsolute{Off: netBase, Size: 1},
		bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 4, SkipTrue: uint8(2 + len(v6))},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 6, SkipTrue: 1},
		bpf.RetConstant{Val: missIndex},
	}
	p = append(p, v6...)
	p = append(p, v4...)
	p = append(p, bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 32 - bucketBits})
	p = append(p, tree(runs)...)
	if len(p) > maxProgram {
		return nil, fmt.Errorf("sticky program: %d instructions, more than the kernel's %d", len(p), maxProgram)
	}
	return p, nil
}

// run is a range of buckets served by one socket index: from start to the
// next run's start.
type run struct {
	start int
	index uint32
}

// tree returns a binary search over the bucket in A that returns the index
// of its run.
func tree(rs []run) []bpf.Instruction {
	if len(rs) == 1 {
		return []bpf.Instruction{bpf.RetConstant{Val: rs[0].index}}
	}
	m := len(rs) / 2
	left, right := tree(rs[:m]), tree(rs[m:])
	var p []bpf.Instruction
	if len(left) <= 255 {
		p = append(p, bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: uint32(rs[m].start), SkipTrue: uint8(len(left))})
	} else {
		// A conditional jump skips at most 255 instructions (more than
		// 256 runs, so more buckets than today's): jump over an
		// unconditional jump that carries the long distance.
		p = append(p,
			bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: uint32(rs[m].start), SkipFalse: 1},
			bpf.Jump{Skip: uint32(len(left))})
	}
	p = append(p, left...)
	return append(p, right...)
}
