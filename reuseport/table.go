package reuseport

import (
	"fmt"
	"net/netip"
	"slices"
)

// Buckets is the number of buckets of a sticky Table. A client's source
// address hashes to one bucket and the table names the slot that serves the
// bucket, so changing the slots moves whole buckets: with 256 of them a move
// can be as small as 1/256 of the clients, and the program that encodes the
// table stays far below the kernel's 4096 instructions.
const Buckets = 256

// Table maps the buckets of client addresses to slots for the sticky
// policy. Slots are the caller's identifiers (brood's worker slot numbers);
// which kernel socket index a slot has is a separate matter (see Group), so
// the table survives sockets closing and changing places in the group.
//
// The table changes only by Add and Remove, and each moves as few buckets as
// keeping the slots even allows: adding a slot to n takes Buckets/(n+1)
// buckets from the fullest slots, removing one hands its buckets to the
// emptiest. Every slot holds Buckets/n buckets, give or take one. A Table is
// not safe for concurrent use; Group guards the one it keeps.
type Table struct {
	owner [Buckets]int
	count map[int]int // buckets per slot; a slot with none is absent
}

// NewTable returns the table for slots, the same as adding them one at a
// time in ascending order, so a given set of slots always gets the same
// table.
func NewTable(slots ...int) *Table {
	t := &Table{count: map[int]int{}}
	s := slices.Clone(slots)
	slices.Sort(s)
	for _, slot := range slices.Compact(s) {
		t.Add(slot)
	}
	return t
}

// Clone returns an independent copy of t.
func (t *Table) Clone() *Table {
	c := &Table{owner: t.owner, count: make(map[int]int, len(t.count))}
	for s, n := range t.count {
		c.count[s] = n
	}
	return c
}

// Slots returns the slots of the table in ascending order.
func (t *Table) Slots() []int {
	s := make([]int, 0, len(t.count))
	for slot := range t.count {
		s = append(s, slot)
	}
	slices.Sort(s)
	return s
}

// Has reports whether slot owns buckets in t.
func (t *Table) Has(slot int) bool { _, ok := t.count[slot]; return ok }

// Owner returns the slot serving bucket b.
func (t *Table) Owner(b int) int { return t.owner[b] }

// Lookup returns the slot that the sticky program sends addr's connections
// to, and false when the table is empty. An IPv4-mapped IPv6 address counts
// as the IPv4 address: the kernel sees an IPv4 packet.
func (t *Table) Lookup(addr netip.Addr) (int, bool) {
	if len(t.count) == 0 {
		return 0, false
	}
	return t.owner[Bucket(addr)], true
}

// Add gives slot its share of the buckets, taken from the slots holding the
// most, and returns how many buckets moved. Adding a slot already present
// changes nothing. Beyond Buckets slots the share is zero: the slot is in
// the table but no client reaches it.
func (t *Table) Add(slot int) int {
	if t.Has(slot) {
		return 0
	}
	if len(t.count) == 0 {
		for b := range t.owner {
			t.owner[b] = slot
		}
		t.count[slot] = Buckets
		return Buckets
	}
	share := Buckets / (len(t.count) + 1)
	for range share {
		donor := t.fullest()
		// The donor's highest bucket: any would do, the hash is uniform;
		// a fixed choice keeps tables reproducible.
		for b := Buckets - 1; b >= 0; b-- {
			if t.owner[b] == donor {
				t.owner[b] = slot
				break
			}
		}
		t.count[donor]--
	}
	t.count[slot] = share
	return share
}

// Remove hands slot's buckets to the slots holding the fewest and returns
// how many moved. Removing the last slot empties the table.
func (t *Table) Remove(slot int) int {
	n, ok := t.count[slot]
	if !ok {
		return 0
	}
	delete(t.count, slot)
	if len(t.count) == 0 {
		t.owner = [Buckets]int{}
		return n
	}
	for b := range t.owner {
		if t.owner[b] == slot {
			heir := t.emptiest()
			t.owner[b] = heir
			t.count[heir]++
		}
	}
	return n
}

// Count returns how many buckets slot serves.
func (t *Table) Count(slot int) int { return t.count[slot] }

func (t *Table) fullest() int {
	best, most := 0, -1
	for _, s := range t.Slots() {
		if t.count[s] > most {
			best, most = s, t.count[s]
		}
	}
	return best
}

func (t *Table) emptiest() int {
	best, least := 0, Buckets+1
	for _, s := range t.Slots() {
		if t.count[s] < least {
			best, least = s, t.count[s]
		}
	}
	return best
}

// Moved returns how many buckets a and b assign to different slots.
func Moved(a, b *Table) int {
	n := 0
	for i := range a.owner {
		if a.owner[i] != b.owner[i] {
			n++
		}
	}
	return n
}

func (t *Table) String() string {
	return fmt.Sprintf("sticky table of %d slots %v", len(t.count), t.Slots())
}

// Bucket returns the bucket of a client's source address, computed exactly
// as the sticky program computes it in the kernel: the address as 32-bit
// big-endian words w, h = mix(h ^ w) for each word starting from h = 0, and
// the top 8 bits of h.
func Bucket(addr netip.Addr) int {
	addr = addr.Unmap()
	b := addr.AsSlice()
	var h uint32
	for i := 0; i < len(b); i += 4 {
		w := uint32(b[i])<<24 | uint32(b[i+1])<<16 | uint32(b[i+2])<<8 | uint32(b[i+3])
		h = mix(h ^ w)
	}
	return int(h >> (32 - bucketBits))
}

const bucketBits = 8 // log2(Buckets)

// The multipliers of mix (Chris Wellons' lowbias32): three xor-shifts and two
// multiplications, every one of them a classic BPF ALU instruction.
const (
	mixMul1 = 0x7feb352d
	mixMul2 = 0x846ca68b
)

func mix(h uint32) uint32 {
	h ^= h >> 16
	h *= mixMul1
	h ^= h >> 15
	h *= mixMul2
	h ^= h >> 16
	return h
}
