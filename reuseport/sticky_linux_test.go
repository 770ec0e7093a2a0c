package reuseport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// serveSlot accepts on slot's socket until the test ends; each connection is
// told its slot number in one byte and closed once the client closes it, so
// TIME_WAIT stays on the client side.
func serveSlot(t *testing.T, g *Group, slot int) {
	t.Helper()
	ln, err := net.FileListener(g.File(slot))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				c.Write([]byte{byte(slot)})
				io.Copy(io.Discard, c)
			})
		}
	})
}

func serveGroup(t *testing.T, g *Group) {
	for _, slot := range g.Order() {
		serveSlot(t, g, slot)
	}
}

// slotFor connects from src and returns the slot whose socket accepted.
func slotFor(ctx context.Context, src netip.Addr, addr string) (int, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}, Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return 0, fmt.Errorf("from %v: %w", src, err)
	}
	return int(b[0]), nil
}

// connectAll makes perSource connections from each source, four at a time,
// and returns the slots each source reached, in order.
func connectAll(t *testing.T, srcs []netip.Addr, perSource int, addr string) map[netip.Addr][]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var (
		mu   sync.Mutex
		got  = map[netip.Addr][]int{}
		errs []error
		wg   sync.WaitGroup
		work = make(chan netip.Addr)
	)
	for range 4 {
		wg.Go(func() {
			for src := range work {
				slot, err := slotFor(ctx, src, addr)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					got[src] = append(got[src], slot)
				}
				mu.Unlock()
			}
		})
	}
	for range perSource {
		for _, s := range srcs {
			work <- s
		}
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d connections failed, first: %v", len(errs), perSource*len(srcs), errs[0])
	}
	return got
}

func loopbackSources(n int) []netip.Addr {
	var s []netip.Addr
	for i := range n {
		s = append(s, netip.AddrFrom4([4]byte{127, 0, byte((i + 2) >> 8), byte(i + 2)}))
	}
	return s
}

// checkSticky fails unless every source reached one slot, the one the
// group's table names for it, and returns that slot per source.
func checkSticky(t *testing.T, g *Group, got map[netip.Addr][]int) map[netip.Addr]int {
	t.Helper()
	tb := g.Sticky()
	one := map[netip.Addr]int{}
	for src, slots := range got {
		want, _ := tb.Lookup(src)
		for _, s := range slots {
			if s != want {
				t.Fatalf("%v reached slots %v; want all on slot %d (group order %v)", src, slots, want, g.Order())
			}
		}
		one[src] = want
	}
	return one
}

func perSlot(got map[netip.Addr][]int) map[int]int {
	n := map[int]int{}
	for _, slots := range got {
		for _, s := range slots {
			n[s]++
		}
	}
	return n
}

// maxOverMean is the busiest slot's connections over the mean of slots.
func maxOverMean(counts map[int]int, slots int) float64 {
	total, most := 0, 0
	for _, c := range counts {
		total += c
		most = max(most, c)
	}
	return float64(most) / (float64(total) / float64(slots))
}

func bindSticky(t *testing.T, addr string, n int) *Group {
	t.Helper()
	g, err := Bind(context.Background(), addr, n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	if err := g.EnableSticky(); err != nil {
		t.Fatal(err)
	}
	return g
}

func TestStickyKeepsEachSourceOnItsSlot(t *testing.T) {
	g := bindSticky(t, "127.0.0.1:0", 4)
	serveGroup(t, g)
	got := connectAll(t, loopbackSources(200), 5, g.Addr().String())
	checkSticky(t, g, got)
	counts := perSlot(got)
	if len(counts) != 4 {
		t.Errorf("connections reached slots %v; want all 4", counts)
	}
	t.Logf("1000 connections from 200 sources: per slot %v, max/mean %.2f", counts, maxOverMean(counts, 4))
}

// TestEvenness measures max/mean over 4 sockets of fresh connections from
// 200 sources with the kernel's hash and with sticky.
func TestEvenness(t *testing.T) {
	conns := 2000
	if testing.Short() {
		conns = 400
	}
	for _, sticky := range []bool{false, true} {
		g, err := Bind(context.Background(), "127.0.0.1:0", 4)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		if sticky {
			if err := g.EnableSticky(); err != nil {
				t.Fatal(err)
			}
		}
		serveGroup(t, g)
		got := connectAll(t, loopbackSources(200), conns/200, g.Addr().String())
		r := maxOverMean(perSlot(got), 4)
		t.Logf("sticky=%v: %d connections, per slot %v, max/mean %.3f", sticky, conns, perSlot(got), r)
		if r > 1.6 {
			t.Errorf("sticky=%v: max/mean %.2f; want under 1.6", sticky, r)
		}
	}
}

func movedFraction(a, b map[netip.Addr]int) float64 {
	n := 0
	for src, s := range a {
		if b[src] != s {
			n++
		}
	}
	return float64(n) / float64(len(a))
}

func TestStickyScalingMovesFewSources(t *testing.T) {
	g := bindSticky(t, "127.0.0.1:0", 4)
	serveGroup(t, g)
	srcs := loopbackSources(200)
	four := checkSticky(t, g, connectAll(t, srcs, 1, g.Addr().String()))

	if _, err := g.Add(context.Background(), 5); err != nil {
		t.Fatal(err)
	}
	serveSlot(t, g, 5)
	five := checkSticky(t, g, connectAll(t, srcs, 1, g.Addr().String()))

	if err := g.Remove(5); err != nil {
		t.Fatal(err)
	}
	back := checkSticky(t, g, connectAll(t, srcs, 1, g.Addr().String()))

	up, down := movedFraction(four, five), movedFraction(five, back)
	t.Logf("sources moved: 4→5 %.3f, 5→4 %.3f (1/5 = 0.200)", up, down)
	if up > 1.5/5 || down > 1.5/5 || up == 0 || down == 0 {
		t.Errorf("sources moved 4→5: %.3f, 5→4: %.3f; want about 1/5, at most %.2f", up, down, 1.5/5)
	}
}

// TestStickyFollowsTheKernelsIndices removes a socket from the middle of the
// group while another descriptor of it stays open, as a worker's would: the
// kernel moves the last socket into the freed index, and the program must
// follow.
func TestStickyFollowsTheKernelsIndices(t *testing.T) {
	g := bindSticky(t, "127.0.0.1:0", 4)
	serveGroup(t, g)
	// Not Fd(): it would put the socket, shared by the test's listener,
	// in blocking mode.
	var held int
	err := control(g.File(2), func(fd int) (err error) { held, err = syscall.Dup(fd); return err })
	if err != nil {
		t.Fatal(err)
	}
	heldFile := os.NewFile(uintptr(held), "held slot 2")
	defer heldFile.Close()
	if err := g.Remove(2); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(g.Order()), "[1 4 3]"; got != want {
		t.Fatalf("order after removing slot 2: %s; want %s", got, want)
	}
	got := connectAll(t, loopbackSources(100), 2, g.Addr().String())
	checkSticky(t, g, got)
	if n := perSlot(got)[2]; n > 0 {
		t.Errorf("%d connections reached removed slot 2", n)
	}
}

// TestStickyOverIPv6 checks the program's IPv6 path in the kernel: from ::1
// and, where the test may add addresses to lo, from 16 more.
func TestStickyOverIPv6(t *testing.T) {
	g, err := Bind(context.Background(), "[::1]:0", 4)
	if err != nil {
		t.Skipf("no IPv6 loopback here (binding [::1] failed: %v)", err)
	}
	defer g.Close()
	if err := g.EnableSticky(); err != nil {
		t.Fatal(err)
	}
	serveGroup(t, g)
	srcs := []netip.Addr{netip.IPv6Loopback()}
	srcs = append(srcs, addLoopback6(t, 16)...)
	got := connectAll(t, srcs, 4, g.Addr().String())
	checkSticky(t, g, got)
	t.Logf("%d IPv6 sources: per slot %v", len(srcs), perSlot(got))
}

// addLoopback6 adds n addresses of fd00:b700::/64 to lo for the test, or
// none where that is not allowed.
func addLoopback6(t *testing.T, n int) []netip.Addr {
	var added []netip.Addr
	for i := range n {
		a := netip.AddrFrom16([16]byte{0xfd, 0, 0xb7, 0, 14: byte(i >> 8), 15: byte(i + 2)})
		out, err := exec.Command("ip", "-6", "addr", "add", a.String()+"/128", "dev", "lo", "nodad").CombinedOutput()
		if err != nil {
			t.Logf("only ::1: adding %v to lo failed (needs CAP_NET_ADMIN and the ip command): %v %s", a, err, out)
			break
		}
		added = append(added, a)
		t.Cleanup(func() { exec.Command("ip", "-6", "addr", "del", a.String()+"/128", "dev", "lo").Run() })
	}
	return added
}

func TestQueueDepthCountsWaitingConnections(t *testing.T) {
	ln, err := Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	waitDepth := func(want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			q, backlog, err := QueueDepth(f)
			if err != nil {
				t.Fatal(err)
			}
			if backlog <= 0 {
				t.Fatalf("backlog %d; want the listen backlog", backlog)
			}
			if q == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("accept queue depth %d; want %d", q, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitDepth(0)
	for range 5 {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	waitDepth(5)
	for range 2 {
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	waitDepth(3)

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cf, err := c.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	defer cf.Close()
	if _, _, err := QueueDepth(cf); err == nil {
		t.Error("QueueDepth of a connected socket: no error; want one saying it is not listening")
	}
}

func TestStickyRefusesMultipathTCP(t *testing.T) {
	var lc net.ListenConfig // Go's default: Multipath TCP where the kernel has it
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if proto, _ := syscall.GetsockoptInt(int(f.Fd()), syscall.SOL_SOCKET, syscall.SO_PROTOCOL); proto != 262 { // IPPROTO_MPTCP
		t.Skipf("Go's default listener here is protocol %d, not Multipath TCP", proto)
	}
	err = AttachSticky(f, NewTable(1), []int{1})
	if !errors.Is(err, syscall.EOPNOTSUPP) {
		t.Errorf("attach to an MPTCP socket: %v; want EOPNOTSUPP explained", err)
	}
}
