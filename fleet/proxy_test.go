package fleet

import (
	"encoding/json"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/broodhq/brood/internal/fleetlink"
	"github.com/broodhq/brood/internal/redistest"
)

// proxy forwards loopback TCP to a Redis; cut drops every connection and
// refuses new ones until restore, as a partition of one host would.
type proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns []net.Conn
	wg    sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() { ln.Close(); p.setCut(true); p.wg.Wait() })
	return p
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, up)
		p.wg.Add(2)
		go func() { defer p.wg.Done(); io.Copy(up, c); up.Close() }()
		go func() { defer p.wg.Done(); io.Copy(c, up); c.Close() }()
		p.mu.Unlock()
	}
}

func (p *proxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

// A host cut off from Redis for a while gets, once back, what the fleet
// sent meanwhile, in order: it reads the stream from the last id it saw.
func TestHostCutOffCatchesUp(t *testing.T) {
	srv := redistest.Start(t)
	p := startProxy(t, srv.Addr)
	opts := "?lease=2s&renew=300ms"
	a := join(t, srv.URL(0)+opts, "app")
	c := join(t, "redis://"+p.ln.Addr().String()+"/0"+opts, "app")
	time.Sleep(200 * time.Millisecond) // c's reader is blocked on the stream

	p.setCut(true)
	var want []string
	for i := range 20 {
		s := string(rune('a' + i))
		raw, _ := json.Marshal(s)
		a.f.Broadcast(fleetlink.Envelope{Action: "m", Data: raw})
		want = append(want, "m:"+s)
		time.Sleep(100 * time.Millisecond) // 2 s cut off
	}
	if got := c.received(); len(got) != 0 {
		t.Fatalf("the cut-off host received %v while cut off", got)
	}
	p.setCut(false)
	deadline := time.Now().Add(10 * time.Second)
	for len(c.received()) < len(want) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := c.received(); !slices.Equal(got, want) {
		t.Errorf("the host back from the cut received %v, want %v", got, want)
	}
}
