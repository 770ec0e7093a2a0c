package framework

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	ct "github.com/broodhq/brood/internal/clustertest"
)

func TestBalanceIsValidated(t *testing.T) {
	tests := []struct {
		opts []Option
		env  map[string]string
		want string // the policy, or the start of the error's text
	}{
		{nil, nil, BalanceHash},
		{[]Option{WithBalance("sticky")}, nil, BalanceSticky},
		{[]Option{WithBalance("hash")}, map[string]string{"BROOD_BALANCE": "sticky"}, BalanceSticky},
		{[]Option{WithBalance("round-robin")}, nil, `invalid WithBalance "round-robin": want one of hash, sticky`},
		{nil, map[string]string{"BROOD_BALANCE": "Sticky"}, `invalid $BROOD_BALANCE "Sticky": want one of hash, sticky`},
		{[]Option{WithBalance("sticky"), WithWorkers(300)}, nil, `invalid WithBalance "sticky": sticky spreads clients over 256 buckets`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			c, err := resolve(tt.opts, env(tt.env))
			if strings.HasPrefix(tt.want, "invalid") {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("got %v; want a configuration error saying %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.balancePolicy(); got != tt.want {
				t.Errorf("policy %q; want %q", got, tt.want)
			}
		})
	}
}

// slotsBySource asks /pid n times from each source over fresh connections
// and returns the one slot each source reached; it fails the test if a
// source reached two.
func slotsBySource(t *testing.T, c *ct.Cluster, sources, n int) map[string]string {
	t.Helper()
	got := map[string]string{}
	for i := range sources {
		src := fmt.Sprintf("127.0.0.%d", i+2)
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
		cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			},
		}}
		for range n {
			_, body, err := ct.Get(cl, c.URL("/pid"))
			if err != nil {
				t.Fatalf("GET /pid from %s: %v", src, err)
			}
			var pid int
			var slot string
			fmt.Sscan(body, &pid, &slot)
			if prev, ok := got[src]; ok && prev != slot {
				t.Fatalf("%s reached slots %s and %s; want one", src, prev, slot)
			}
			got[src] = slot
		}
	}
	return got
}

func movedSources(a, b map[string]string) int {
	n := 0
	for src, s := range a {
		if b[src] != s {
			n++
		}
	}
	return n
}

// TestStickyKeepsClientsThroughCrashReloadAndScaling runs a real cluster
// with sticky balancing: a source's connections reach one slot, the same
// after its worker is killed and after a rolling reload, and scaling moves
// few sources.
func TestStickyKeepsClientsThroughCrashReloadAndScaling(t *testing.T) {
	c := startOps(t, "BROOD_BALANCE=sticky", "BROOD_WORKERS=3")
	const sources = 200
	before := slotsBySource(t, c, sources, 2)
	slots := map[string]bool{}
	for _, s := range before {
		slots[s] = true
	}
	if len(slots) != 3 {
		t.Fatalf("%d sources reached slots %v; want all 3", sources, slots)
	}

	_, body, err := ct.Get(ct.Client(5*time.Second), c.URL("/pid"))
	if err != nil {
		t.Fatal(err)
	}
	var victim int
	fmt.Sscan(body, &victim)
	at := c.Lines()
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	at = waitMsg(t, c, at, "replacement ready", 30*time.Second) + 1
	if n := movedSources(before, slotsBySource(t, c, sources, 1)); n != 0 {
		t.Errorf("%d of %d sources changed slot after worker %d was killed; want 0", n, sources, victim)
	}

	c.Signal(syscall.SIGHUP)
	at = waitMsg(t, c, at, "reload complete", 60*time.Second) + 1
	if n := movedSources(before, slotsBySource(t, c, sources, 1)); n != 0 {
		t.Errorf("%d of %d sources changed slot after a rolling reload; want 0", n, sources)
	}

	c.Signal(syscall.SIGTTIN)
	at = waitMsg(t, c, at, "scaled", 30*time.Second) + 1
	four := slotsBySource(t, c, sources, 1)
	up := movedSources(before, four)
	c.Signal(syscall.SIGTTOU)
	waitMsg(t, c, at, "scaled", 30*time.Second)
	// The retired worker drains what it accepted while its socket passes
	// to a survivor; until it exits, both answer for that socket.
	deadline := time.Now().Add(20 * time.Second)
	for len(c.Children()) != 4 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	down := movedSources(four, slotsBySource(t, c, sources, 1))
	t.Logf("of %d sources, %d moved scaling 3→4, %d scaling 4→3", sources, up, down)
	if limit := sources * 3 / 2 / 4; up == 0 || up > limit || down > limit {
		t.Errorf("%d sources moved scaling 3→4 and %d scaling 4→3; want about 1/4 of %d, at most %d", up, down, sources, limit)
	}
}
