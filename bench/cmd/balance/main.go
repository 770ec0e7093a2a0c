// Command balance measures how the kernel spreads connections over a
// SO_REUSEPORT group of brood's slot sockets, with the kernel's hash and
// with the sticky program, and how many client addresses move when the
// group scales:
//
//   - evenness: -conns fresh connections from -sources addresses
//     (127.0.0.2, 127.0.0.3, ...) over -slots sockets, max/mean of the
//     connections per socket, in each mode;
//   - stickiness: the share of sources whose connections all reached one
//     socket (sticky: also the one reuseport.Table names);
//   - scaling: the share of sources that change socket going slots → slots+1
//     → slots, one connection per source at each step.
//
// Everything runs in this process on 127.0.0.1; a crash or a rolling reload
// of a worker does not touch the sockets, so the sockets' mapping is what a
// client sees through them (framework's TestStickyKeepsClientsThroughCrash-
// ReloadAndScaling checks that on a real cluster).
//
//	cd bench && go run ./cmd/balance                    # 10,000 connections
//	cd bench && go run ./cmd/balance -conns 2000 -json
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/broodhq/brood/reuseport"
)

type modeResult struct {
	Mode      string      `json:"mode"`
	Conns     int         `json:"conns"`
	PerSlot   map[int]int `json:"per_slot"`
	MaxMean   float64     `json:"max_over_mean"`
	OneSlot   float64     `json:"sources_on_one_slot"` // share of sources
	AsTable   float64     `json:"sources_where_table_says,omitempty"`
	ScaleUp   float64     `json:"moved_scale_up,omitempty"`
	ScaleDown float64     `json:"moved_scale_down,omitempty"`
}

func main() {
	conns := flag.Int("conns", 10000, "fresh connections per mode")
	sources := flag.Int("sources", 200, "client source addresses, from 127.0.0.2")
	slots := flag.Int("slots", 4, "sockets in the group")
	asJSON := flag.Bool("json", false, "print JSON")
	flag.Parse()
	if *sources < 1 || *sources > 60000 || *slots < 1 || *slots > 250 {
		fmt.Fprintln(os.Stderr, "balance: want 1 to 60000 sources and 1 to 250 slots")
		os.Exit(2)
	}
	srcs := make([]netip.Addr, *sources)
	for i := range srcs {
		srcs[i] = netip.AddrFrom4([4]byte{127, byte((i + 2) >> 16), byte((i + 2) >> 8), byte(i + 2)})
	}
	var results []modeResult
	for _, sticky := range []bool{false, true} {
		r, err := measure(srcs, *conns, *slots, sticky)
		if err != nil {
			fmt.Fprintln(os.Stderr, "balance:", err)
			os.Exit(1)
		}
		results = append(results, r)
	}
	if *asJSON {
		json.NewEncoder(os.Stdout).Encode(results)
		return
	}
	fmt.Printf("%d fresh connections from %d sources over %d sockets on 127.0.0.1\n", *conns, *sources, *slots)
	fmt.Printf("%-7s %-28s %9s %11s %9s %9s %11s\n", "mode", "per socket", "max/mean", "one socket", "as table", "moved up", "moved down")
	for _, r := range results {
		line := fmt.Sprintf("%-7s %-28s %9.3f %10.1f%%", r.Mode, fmt.Sprint(counts(r.PerSlot, *slots)), r.MaxMean, 100*r.OneSlot)
		if r.Mode == "sticky" {
			line += fmt.Sprintf(" %8.1f%% %8.1f%% %10.1f%%", 100*r.AsTable, 100*r.ScaleUp, 100*r.ScaleDown)
		}
		fmt.Println(line)
	}
	fmt.Printf("(moved: share of sources on another socket after %d→%d and %d→%d; 1/%d = %.1f%%)\n", *slots, *slots+1, *slots+1, *slots, *slots+1, 100/float64(*slots+1))
}

func counts(per map[int]int, slots int) []int {
	c := make([]int, slots)
	for s := range slots {
		c[s] = per[s+1]
	}
	return c
}

func measure(srcs []netip.Addr, conns, slots int, sticky bool) (modeResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r := modeResult{Mode: "hash", Conns: conns}
	g, err := reuseport.Bind(ctx, "127.0.0.1:0", slots)
	if err != nil {
		return r, err
	}
	defer g.Close()
	if sticky {
		r.Mode = "sticky"
		if err := g.EnableSticky(); err != nil {
			return r, err
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	serve := func(slot int) error {
		ln, err := net.FileListener(g.File(slot))
		if err != nil {
			return err
		}
		lns = append(lns, ln)
		wg.Go(func() { accept(ln, slot) })
		return nil
	}
	for _, slot := range g.Order() {
		if err := serve(slot); err != nil {
			return r, err
		}
	}
	addr := g.Addr().String()

	got, err := connectAll(ctx, srcs, conns, addr)
	if err != nil {
		return r, err
	}
	r.PerSlot = map[int]int{}
	one, asTable := 0, 0
	tb := g.Sticky()
	for src, ss := range got {
		same := true
		for _, s := range ss {
			r.PerSlot[s]++
			same = same && s == ss[0]
		}
		if same {
			one++
		}
		if tb != nil {
			if want, _ := tb.Lookup(src); same && ss[0] == want {
				asTable++
			}
		}
	}
	most := 0
	for _, n := range r.PerSlot {
		most = max(most, n)
	}
	r.MaxMean = float64(most) / (float64(conns) / float64(slots))
	r.OneSlot = float64(one) / float64(len(srcs))
	if !sticky {
		return r, nil
	}
	r.AsTable = float64(asTable) / float64(len(srcs))

	before, err := connectAll(ctx, srcs, len(srcs), addr)
	if err != nil {
		return r, err
	}
	if _, err := g.Add(ctx, slots+1); err != nil {
		return r, err
	}
	if err := serve(slots + 1); err != nil {
		return r, err
	}
	up, err := connectAll(ctx, srcs, len(srcs), addr)
	if err != nil {
		return r, err
	}
	if err := g.Remove(slots + 1); err != nil {
		return r, err
	}
	down, err := connectAll(ctx, srcs, len(srcs), addr)
	if err != nil {
		return r, err
	}
	r.ScaleUp, r.ScaleDown = moved(before, up), moved(up, down)
	return r, nil
}

func moved(a, b map[netip.Addr][]int) float64 {
	n := 0
	for src, s := range a {
		if b[src][0] != s[0] {
			n++
		}
	}
	return float64(n) / float64(len(a))
}

// accept tells each connection its slot in one byte and closes it once the
// client has, so TIME_WAIT stays with the client.
func accept(ln net.Listener, slot int) {
	var wg sync.WaitGroup
	defer wg.Wait()
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
}

// connectAll makes n connections, the sources taking turns, four at a time,
// and returns the slots each source reached.
func connectAll(ctx context.Context, srcs []netip.Addr, n int, addr string) (map[netip.Addr][]int, error) {
	var (
		mu    sync.Mutex
		got   = map[netip.Addr][]int{}
		first error
		wg    sync.WaitGroup
		work  = make(chan netip.Addr)
	)
	for range 4 {
		wg.Go(func() {
			for src := range work {
				slot, err := slotFor(ctx, src, addr)
				mu.Lock()
				if err != nil && first == nil {
					first = err
				} else if err == nil {
					got[src] = append(got[src], slot)
				}
				mu.Unlock()
			}
		})
	}
	for i := range n {
		work <- srcs[i%len(srcs)]
	}
	close(work)
	wg.Wait()
	return got, first
}

func slotFor(ctx context.Context, src netip.Addr, addr string) (int, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}, Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, fmt.Errorf("connect from %v: %w", src, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return 0, fmt.Errorf("read from %v: %w", src, err)
	}
	return int(b[0]), nil
}
