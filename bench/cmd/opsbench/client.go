package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The load here is sent from raw connections rather than with
// internal/loadgen because the diagnosis needs every failure on its own:
// when it happened, on which connection's how-many-th request, at which
// stage, and which server process served that connection last. Like
// loadgen it never retries: net/http's Transport silently resends a GET
// that failed on a reused keep-alive connection, which would hide exactly
// the failures this benchmark exists to count. Responses are parsed with
// http.ReadResponse, a parser with no retry logic of its own.

// Failure kinds, classified as internal/loadgen classifies them.
const (
	kindRefused = iota // connect refused: nothing listening
	kindReset          // connection reset or broken pipe
	kindTimeout        // no complete response within the timeout
	kindClosed         // the server closed the connection before a complete response
	kindNon2xx         // a complete response whose status was not 2xx
	kindOther          // anything else
	nKinds
)

var kindNames = [nKinds]string{"refused", "reset", "timeout", "closed", "non-2xx", "other"}

func classify(err error) int {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return kindRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return kindReset
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return kindTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return kindClosed
	default:
		return kindOther
	}
}

// failure is one failed request.
type failure struct {
	At      time.Time
	Fresh   bool
	Kind    int
	Stage   string // connect, write or read
	Reused  bool   // not the first request on its connection
	Partial bool   // part of the response had arrived
	PID     int    // the server process that answered this connection last, 0 if none yet
	Local   string // the client's address, the "remote" of the server's logs
	Err     string
}

// tally is what one client saw; merged once the load ends.
type tally struct {
	OK       int64
	Errs     [nKinds]int64
	Failures []failure
	PIDs     map[int]*pidSeen // who answered, from /whoami's body
}

type pidSeen struct {
	N           int64
	First, Last time.Time
}

func (t *tally) failed() int64 {
	var n int64
	for _, e := range t.Errs {
		n += e
	}
	return n
}

func (t *tally) merge(o *tally) {
	t.OK += o.OK
	for i := range t.Errs {
		t.Errs[i] += o.Errs[i]
	}
	t.Failures = append(t.Failures, o.Failures...)
	if t.PIDs == nil {
		t.PIDs = map[int]*pidSeen{}
	}
	for pid, s := range o.PIDs {
		m := t.PIDs[pid]
		if m == nil {
			c := *s
			t.PIDs[pid] = &c
			continue
		}
		m.N += s.N
		if s.First.Before(m.First) {
			m.First = s.First
		}
		if s.Last.After(m.Last) {
			m.Last = s.Last
		}
	}
}

// load is a running set of keep-alive and fresh-connection clients.
type load struct {
	stop    atomic.Bool
	wg      sync.WaitGroup
	clients []*client
	Start   time.Time
	End     time.Time
}

// startLoad starts keepAlive clients that reuse their connection and fresh
// clients that open one per request, all sending GET /whoami to addr (a
// 127.0.0.1 address) back to back, each request bounded by timeout.
func startLoad(addr string, keepAlive, fresh int, timeout, sleep time.Duration) *load {
	l := &load{Start: time.Now()}
	for i := range keepAlive + fresh {
		f := i >= keepAlive
		c := &client{addr: addr, fresh: f, req: request(f, sleep), timeout: timeout, t: tally{PIDs: map[int]*pidSeen{}}}
		l.clients = append(l.clients, c)
		l.wg.Go(func() { c.run(&l.stop) })
	}
	return l
}

// startPausingLoad starts n keep-alive clients that each wait a random
// 0 to maxPause between requests on their connection, the way browsers,
// mobile apps and client pools do.
func startPausingLoad(addr string, n int, maxPause, timeout time.Duration) *load {
	l := &load{Start: time.Now()}
	for range n {
		c := &client{addr: addr, req: request(false, 0), timeout: timeout, pause: maxPause, t: tally{PIDs: map[int]*pidSeen{}}}
		l.clients = append(l.clients, c)
		l.wg.Go(func() { c.run(&l.stop) })
	}
	return l
}

// finish stops the clients, waits for their last requests (each bounded
// by the timeout) and returns the keep-alive and fresh tallies.
func (l *load) finish() (keepAlive, fresh tally) {
	l.stop.Store(true)
	l.wg.Wait()
	l.End = time.Now()
	for _, c := range l.clients {
		if c.fresh {
			fresh.merge(&c.t)
		} else {
			keepAlive.merge(&c.t)
		}
	}
	return keepAlive, fresh
}

// maxFailuresKept bounds the memory a broken server can make a run use;
// the counts stay exact.
const maxFailuresKept = 2000

type client struct {
	addr    string
	fresh   bool
	req     []byte
	timeout time.Duration
	pause   time.Duration // at most this long between requests, at random
	t       tally

	conn   net.Conn
	cr     countingReader
	br     *bufio.Reader
	onConn int // requests sent on conn so far
	pid    int // who answered conn's last response
}

// countingReader counts the bytes read from the connection, so a failure
// can say whether any of the response had arrived.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

var getReq, _ = http.NewRequest(http.MethodGet, "/whoami", nil)

// request is the GET a client sends; sleep above zero asks the server to
// hold each request that long.
func request(fresh bool, sleep time.Duration) []byte {
	target := "/whoami"
	if sleep > 0 {
		target += "?sleep=" + sleep.String()
	}
	s := "GET " + target + " HTTP/1.1\r\nHost: opsbench\r\nUser-Agent: brood-opsbench\r\n"
	if fresh {
		s += "Connection: close\r\n"
	}
	return []byte(s + "\r\n")
}

func (c *client) run(stop *atomic.Bool) {
	defer c.drop()
	c.br = bufio.NewReaderSize(&c.cr, 4096)
	for !stop.Load() {
		c.one()
		if c.pause > 0 {
			c.wait(stop, rand.N(c.pause))
		}
	}
}

// wait pauses d, or until the load stops.
func (c *client) wait(stop *atomic.Bool, d time.Duration) {
	for end := time.Now().Add(d); !stop.Load(); {
		left := time.Until(end)
		if left <= 0 {
			return
		}
		time.Sleep(min(left, 50*time.Millisecond))
	}
}

func (c *client) one() {
	deadline := time.Now().Add(c.timeout)
	if c.conn == nil {
		d := net.Dialer{Deadline: deadline}
		conn, err := d.Dial("tcp", c.addr)
		if err != nil {
			c.fail("connect", err)
			// A refused connect returns at once; do not spin.
			time.Sleep(time.Millisecond)
			return
		}
		c.conn, c.onConn, c.pid = conn, 0, 0
		c.cr = countingReader{r: conn}
		c.br.Reset(&c.cr)
	}
	c.conn.SetDeadline(deadline)
	c.cr.n = 0
	c.onConn++
	if _, err := c.conn.Write(c.req); err != nil {
		c.fail("write", err)
		c.drop()
		return
	}
	resp, err := http.ReadResponse(c.br, getReq)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err != nil {
		c.fail("read", err)
		c.drop()
		return
	}
	now := time.Now()
	if resp.StatusCode/100 != 2 {
		c.record(failure{At: now, Kind: kindNon2xx, Stage: "read", Err: resp.Status})
	} else {
		c.t.OK++
		c.pid = pidOf(body)
		s := c.t.PIDs[c.pid]
		if s == nil {
			s = &pidSeen{First: now}
			c.t.PIDs[c.pid] = s
		}
		s.N++
		s.Last = now
	}
	if c.fresh || resp.Close {
		// Wait for the server's FIN before closing, as loadgen does, so
		// the server keeps the TIME_WAIT and the fresh clients do not run
		// out of ephemeral ports. Errors here come after a complete
		// response and are not failures.
		io.Copy(io.Discard, c.br)
		c.drop()
	}
}

func (c *client) fail(stage string, err error) {
	c.record(failure{At: time.Now(), Kind: classify(err), Stage: stage, Err: err.Error()})
}

func (c *client) record(f failure) {
	f.Fresh = c.fresh
	f.Reused = c.onConn > 1
	f.Partial = c.cr.n > 0
	f.PID = c.pid
	if c.conn != nil {
		f.Local = c.conn.LocalAddr().String()
	}
	c.t.Errs[f.Kind]++
	if len(c.t.Failures) < maxFailuresKept {
		c.t.Failures = append(c.t.Failures, f)
	}
}

func (c *client) drop() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// pidOf reads the pid from a /whoami body, where it comes last:
// "worker 1, pid 4242\n" (naivereload), "visit 9, worker 1, pid 4242\n" (opsapp).
func pidOf(body []byte) int {
	_, after, ok := bytes.Cut(body, []byte("pid "))
	if !ok {
		return 0
	}
	pid, _ := strconv.Atoi(string(bytes.TrimSpace(after)))
	return pid
}

// settle waits d or until ctx ends.
func settle(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
