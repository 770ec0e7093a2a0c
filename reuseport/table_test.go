package reuseport

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"golang.org/x/net/bpf"
)

func seq(from, to int) []int {
	var s []int
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func TestTableIsEven(t *testing.T) {
	for n := 1; n <= 40; n++ {
		tb := NewTable(seq(1, n)...)
		lo, hi := Buckets, 0
		for _, s := range tb.Slots() {
			lo, hi = min(lo, tb.Count(s)), max(hi, tb.Count(s))
		}
		if len(tb.Slots()) != n || hi-lo > 1 {
			t.Errorf("%d slots: buckets per slot from %d to %d over %d slots; want %d slots within one bucket", n, lo, hi, len(tb.Slots()), n)
		}
	}
}

// sources returns the test's client addresses: 127.0.0.2 on, then random
// IPv4 and IPv6 addresses.
func sources(n int) []netip.Addr {
	r := rand.New(rand.NewPCG(1, 2))
	var a []netip.Addr
	for i := range n {
		a = append(a, netip.AddrFrom4([4]byte{127, 0, byte((i + 2) >> 8), byte(i + 2)}))
		var v4 [4]byte
		var v6 [16]byte
		for j := range v4 {
			v4[j] = byte(r.Uint32())
		}
		for j := range v6 {
			v6[j] = byte(r.Uint32())
		}
		a = append(a, netip.AddrFrom4(v4), netip.AddrFrom16(v6))
	}
	return a
}

func TestScalingMovesOnlyTheChangedShare(t *testing.T) {
	addrs := sources(2000)
	for _, tc := range []struct{ from, to int }{{4, 5}, {5, 4}, {1, 2}, {8, 9}, {9, 8}, {2, 1}} {
		before := NewTable(seq(1, tc.from)...)
		after := before.Clone()
		if tc.to > tc.from {
			after.Add(tc.to)
		} else {
			after.Remove(tc.from)
		}
		n := max(tc.from, tc.to)
		moved := 0
		for _, a := range addrs {
			s0, _ := before.Lookup(a)
			s1, _ := after.Lookup(a)
			if s0 != s1 {
				moved++
				// Only the new slot gains and only the removed one loses.
				if tc.to > tc.from && s1 != tc.to || tc.to < tc.from && s0 != tc.from {
					t.Fatalf("%d→%d: %v moved from slot %d to %d", tc.from, tc.to, a, s0, s1)
				}
			}
		}
		frac := float64(moved) / float64(len(addrs))
		t.Logf("%d→%d: %.3f of addresses moved (1/N = %.3f), %d of %d buckets", tc.from, tc.to, frac, 1/float64(n), Moved(before, after), Buckets)
		if frac > 1.5/float64(n) || frac < 0.5/float64(n) {
			t.Errorf("%d→%d: %.3f of addresses moved; want about 1/%d, at most 1.5/%d = %.3f", tc.from, tc.to, frac, n, n, 1.5/float64(n))
		}
	}
}

func TestScaleUpThenDownKeepsTheSlotsEven(t *testing.T) {
	tb := NewTable(1, 2, 3, 4)
	tb.Add(5)
	tb.Remove(2)
	tb.Add(2)
	tb.Remove(5)
	for _, s := range tb.Slots() {
		if c := tb.Count(s); c < Buckets/4 || c > Buckets/4+1 {
			t.Errorf("slot %d holds %d buckets after 4→5→4→5→4; want %d", s, c, Buckets/4)
		}
	}
	if got := tb.Slots(); !slices.Equal(got, []int{1, 2, 3, 4}) {
		t.Errorf("slots %v; want [1 2 3 4]", got)
	}
}

func TestBucketIsEven(t *testing.T) {
	addrs := sources(256 * 64)
	counts := map[bool][]int{false: make([]int, Buckets), true: make([]int, Buckets)}
	for _, a := range addrs {
		counts[a.Is6()][Bucket(a)]++
	}
	for v6, c := range counts {
		total := 0
		for _, x := range c {
			total += x
		}
		mean := float64(total) / Buckets
		if float64(slices.Max(c)) > 1.5*mean || float64(slices.Min(c)) < 0.5*mean {
			t.Errorf("ipv6=%v: buckets hold %d to %d addresses, mean %.0f; want within half the mean", v6, slices.Min(c), slices.Max(c), mean)
		}
	}
	if Bucket(netip.MustParseAddr("::ffff:10.1.2.3")) != Bucket(netip.MustParseAddr("10.1.2.3")) {
		t.Error("an IPv4-mapped address has another bucket than its IPv4 address")
	}
}

// packet returns an IP header from src, as the program sees it at
// SKF_NET_OFF.
func packet(src netip.Addr) []byte {
	if src.Is4() {
		p := make([]byte, 20)
		p[0] = 0x45
		copy(p[12:], src.AsSlice())
		return p
	}
	p := make([]byte, 40)
	p[0] = 0x60
	copy(p[8:], src.AsSlice())
	return p
}

// TestProgramComputesTheTable runs the program (reading the header at 0
// instead of SKF_NET_OFF) in x/net/bpf's VM and checks that it returns the
// kernel index of the slot Lookup names, for tables of few and of many runs.
func TestProgramComputesTheTable(t *testing.T) {
	grown := NewTable(1, 2, 3, 4)
	grown.Add(5)
	grown.Remove(2)
	tables := map[string]*Table{
		"one":       NewTable(7),
		"four":      NewTable(1, 2, 3, 4),
		"4→5→4":     grown,
		"200 slots": NewTable(seq(1, 200)...),
	}
	addrs := sources(300)
	for name, tb := range tables {
		t.Run(name, func(t *testing.T) {
			order := tb.Slots()
			rand.New(rand.NewPCG(3, 4)).Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			prog, err := program(tb, order, 0)
			if err != nil {
				t.Fatal(err)
			}
			vm, err := bpf.NewVM(prog)
			if err != nil {
				t.Fatalf("%d instructions: %v", len(prog), err)
			}
			for _, a := range addrs {
				got, err := vm.Run(packet(a))
				if err != nil {
					t.Fatal(err)
				}
				slot, _ := tb.Lookup(a)
				if want := slices.Index(order, slot); got != want {
					t.Fatalf("%v (bucket %d): program returned index %d; want %d (slot %d)", a, Bucket(a), got, want, slot)
				}
			}
			if got, _ := vm.Run(make([]byte, 40)); got != missIndex {
				t.Errorf("an IP version 0 header: index %d; want %#x so the kernel hashes", got, missIndex)
			}
		})
	}
}

func TestProgramRefusesASlotWithoutSocket(t *testing.T) {
	if _, err := Program(NewTable(1, 2, 3), []int{1, 3}); err == nil {
		t.Error("a table with slot 2 compiled for a group without it")
	}
}

// TestTreeJumpsFarAcrossLargeSubtrees checks the search over more runs than
// a conditional jump can skip, which today's 256 buckets never need.
func TestTreeJumpsFarAcrossLargeSubtrees(t *testing.T) {
	var runs []run
	for i := range 1000 {
		runs = append(runs, run{start: 3 * i, index: uint32(i % 7)})
	}
	prog := append([]bpf.Instruction{bpf.LoadAbsolute{Off: 0, Size: 4}}, tree(runs)...)
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	for v := range 3000 {
		got, err := vm.Run([]byte{0, 0, byte(v >> 8), byte(v)})
		if err != nil {
			t.Fatal(err)
		}
		if want := (v / 3) % 7; got != want {
			t.Fatalf("value %d: index %d; want %d", v, got, want)
		}
	}
}
