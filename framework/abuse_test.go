package framework

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ct "github.com/broodhq/brood/internal/clustertest"
)

func init() {
	// Short limits, so tests see them act within a second.
	testApps["limits"] = func() error {
		return Run(testRouter(), WithServerLimits(ServerLimits{
			ReadHeaderTimeout: 500 * time.Millisecond,
			MaxHeaderBytes:    8 << 10,
		}))
	}
}

// slowlorisConns is how many connections the slowloris test holds open.
// Each costs this process one file descriptor.
const slowlorisConns = 300

// Hundreds of connections that send their headers a byte at a time hold a
// goroutine each in the workers, not a worker: requests from other clients
// are still answered promptly. (The connections are cut at
// ReadHeaderTimeout, 10s by default; this test ends before that.)
func TestSlowlorisDoesNotStarveRequests(t *testing.T) {
	n := slowlorisConns
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < uint64(n)+200 {
		n = max(10, int(lim.Cur)-200)
		t.Logf("open file limit is %d: holding %d slow connections instead of %d", lim.Cur, n, slowlorisConns)
	}
	c := startBasic(t)

	// Every slow connection has sent its request line and one header line,
	// then drips one byte of a never-ending header every 100ms.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var dialErrs, cut int
	for range n {
		conn, err := net.DialTimeout("tcp", c.Addr, 5*time.Second)
		if err != nil {
			dialErrs++
			continue
		}
		wg.Go(func() {
			defer conn.Close()
			if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: slow\r\nX-Slow: "); err != nil {
				return
			}
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for i := 0; i < 100; i++ { // at most 10s, bounded even if stop never came
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if _, err := conn.Write([]byte{'a'}); err != nil {
					mu.Lock()
					cut++
					mu.Unlock()
					return
				}
			}
		})
	}
	if dialErrs > 0 {
		t.Errorf("%d of %d slow connections could not even connect", dialErrs, n)
	}
	defer func() { close(stop); wg.Wait() }()

	// Meanwhile, a well-behaved client: a new connection per request, so
	// each one waits in the same accept queues as the slow ones did.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var lat []time.Duration
	deadline := time.Now().Add(2 * time.Second)
	for i := 0; i < 500 && time.Now().Before(deadline); i++ {
		start := time.Now()
		st, body, err := ct.Get(client, c.URL("/"))
		if err != nil || st != 200 || body != "Hello, World!" {
			t.Fatalf("request %d while %d slow connections were open: %d %q %v", i, n, st, body, err)
		}
		lat = append(lat, time.Since(start))
		time.Sleep(5 * time.Millisecond)
	}
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	t.Logf("%d requests beside %d slow connections: p50 %s, p99 %s, max %s", len(lat), n, p50, p99, lat[len(lat)-1])
	if p99 > time.Second {
		t.Errorf("p99 latency %s with %d slow connections open; want under 1s", p99, n)
	}
	mu.Lock()
	defer mu.Unlock()
	if cut > 0 {
		t.Errorf("%d slow connections were cut before ReadHeaderTimeout; the test did not hold them all", cut)
	}
}

// A connection still sending its headers at ReadHeaderTimeout is closed
// without an answer (net/http does not answer a read timeout).
func TestSlowHeadersCutAtReadHeaderTimeout(t *testing.T) {
	c := ct.Start(t, "limits", local, "BROOD_WORKERS=1")
	c.WaitReady(30 * time.Second)

	conn, err := net.DialTimeout("tcp", c.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: slow\r\nX-Slow: ")
	var werr error
	for i := 0; i < 50 && werr == nil; i++ { // 5s at most
		time.Sleep(100 * time.Millisecond)
		_, werr = conn.Write([]byte{'a'})
		if werr == nil {
			conn.SetReadDeadline(time.Now().Add(time.Millisecond))
			var b [1]byte
			if _, err := conn.Read(b[:]); err != nil && !isTimeout(err) {
				werr = err
			}
		}
	}
	took := time.Since(start)
	if werr == nil {
		t.Fatalf("slow connection still open after %s; want it closed at ReadHeaderTimeout 500ms", took)
	}
	if took < 400*time.Millisecond || took > 3*time.Second {
		t.Errorf("slow connection closed after %s; want about 500ms (ReadHeaderTimeout)", took)
	}
	t.Logf("closed after %s: %v", took, werr)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// rawRequest sends req on a new connection and returns the status code of
// the answer.
func rawRequest(t *testing.T, addr, req string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	// Written from a goroutine: the server may answer (431) and close
	// before reading all of an oversized request.
	go io.WriteString(conn, req)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestBadRequestsAnswered(t *testing.T) {
	basic := startBasic(t)
	limits := ct.Start(t, "limits", local, "BROOD_WORKERS=1")
	limits.WaitReady(30 * time.Second)

	header := func(size int) string {
		return "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", size) + "\r\n\r\n"
	}
	for _, tc := range []struct {
		name string
		c    *ct.Cluster
		req  string
		want int
	}{
		{"well-formed", basic, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 200},
		// The defaults: 64 KiB, plus the 4 KiB net/http adds as slack.
		{"60 KiB header, default limit", basic, header(60 << 10), 200},
		{"128 KiB header, default limit", basic, header(128 << 10), 431},
		{"1 MiB header, default limit", basic, header(1 << 20), 431},
		// WithServerLimits(MaxHeaderBytes: 8 KiB).
		{"4 KiB header, 8 KiB limit", limits, header(4 << 10), 200},
		{"16 KiB header, 8 KiB limit", limits, header(16 << 10), 431},
		// Malformed requests never reach the handler.
		{"header without colon", basic, "GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400},
		{"space in header name", basic, "GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", 400},
		{"no Host in HTTP/1.1", basic, "GET / HTTP/1.1\r\n\r\n", 400},
		{"two Hosts", basic, "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400},
		{"garbage request line", basic, "HELLO\r\n\r\n", 400},
		{"bad HTTP version", basic, "GET / HTTP/1.x\r\nHost: x\r\n\r\n", 400},
		{"conflicting Content-Length", basic, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
		{"control byte in header value", basic, "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rawRequest(t, tc.c.Addr, tc.req); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
	// The workers are still serving after all that.
	if st, _, err := ct.Get(ct.Client(5*time.Second), basic.URL("/")); err != nil || st != 200 {
		t.Errorf("GET / after the bad requests = %d, %v; want 200", st, err)
	}
}

func TestServerLimitsRefused(t *testing.T) {
	for _, tc := range []struct {
		l    ServerLimits
		want string
	}{
		{ServerLimits{ReadHeaderTimeout: -time.Second}, "ReadHeaderTimeout -1s"},
		{ServerLimits{ReadHeaderTimeout: time.Hour}, "ReadHeaderTimeout 1h0m0s"},
		{ServerLimits{IdleTimeout: 2 * time.Hour}, "IdleTimeout 2h0m0s"},
		{ServerLimits{WriteTimeout: -1}, "WriteTimeout"},
		{ServerLimits{ReadTimeout: 48 * time.Hour}, "ReadTimeout"},
		{ServerLimits{MaxHeaderBytes: 100}, "MaxHeaderBytes 100"},
		{ServerLimits{MaxHeaderBytes: 1 << 30}, "MaxHeaderBytes"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			_, err := resolve([]Option{WithServerLimits(tc.l)}, func(string) string { return "" })
			if err == nil || !strings.Contains(err.Error(), "WithServerLimits "+tc.want) {
				t.Errorf("error %v; want one naming WithServerLimits %s", err, tc.want)
			}
		})
	}
	c, err := resolve([]Option{WithServerLimits(ServerLimits{IdleTimeout: time.Minute})}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	got := c.limits.withDefaults()
	want := ServerLimits{ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: time.Minute, MaxHeaderBytes: maxHeaderBytes}
	if got != want {
		t.Errorf("limits %+v, want %+v", got, want)
	}
}
