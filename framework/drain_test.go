package framework

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	ct "github.com/broodhq/brood/internal/clustertest"
	"github.com/broodhq/brood/internal/protocol"
)

func init() {
	// A replacement worker that takes a while before it takes over its
	// sockets: the window in which the master has started a child that
	// holds them and nobody but the old worker accepts.
	testApps["slow-boot"] = func() error {
		if os.Getenv(protocol.EnvRole) == "worker" && os.Getenv(protocol.EnvGeneration) != "1" {
			time.Sleep(1500 * time.Millisecond)
		}
		return Run(testRouter())
	}
}

// socketFlags reads the flags of every socket descriptor of pid from
// /proc/pid/fdinfo, by descriptor.
func socketFlags(t *testing.T, pid int) map[string]int64 {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	flags := map[string]int64{}
	for _, e := range ents {
		link, err := os.Readlink(dir + "/" + e.Name())
		if err != nil || !strings.HasPrefix(link, "socket:") {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, e.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "flags:"); ok {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 8, 64)
				flags[e.Name()] = n
			}
		}
	}
	return flags
}

// Starting a worker must not make the sockets it inherits blocking for the
// workers that already accept on them: one whose accept4 then blocks in the
// kernel cannot close its listener, and drains until it is killed at the
// shutdown timeout.
func TestReplacedWorkerDrainsWhileItsSuccessorBoots(t *testing.T) {
	c := ct.Start(t, "slow-boot", local, "BROOD_WORKERS=1", "BROOD_SHUTDOWN_TIMEOUT=30s")
	c.WaitReady(30 * time.Second)
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	_, body, err := ct.Get(cl, c.URL("/pid"))
	if err != nil {
		t.Fatal(err)
	}
	old, _ := strconv.Atoi(strings.Fields(body)[0])
	at := c.Lines()
	c.Signal(syscall.SIGHUP)
	time.Sleep(500 * time.Millisecond) // the successor is started and sleeps
	for fd, fl := range socketFlags(t, old) {
		if fl&syscall.O_NONBLOCK == 0 {
			t.Errorf("socket fd %s of the old worker is blocking (flags %o) while its successor boots", fd, fl)
		}
	}
	// Served by the old worker, whose accept loop then accepts again.
	for range 3 {
		if _, _, err := ct.Get(cl, c.URL("/")); err != nil {
			t.Fatal(err)
		}
	}
	waitMsg(t, c, at, "reload complete", 60*time.Second)
	if !exits(old, 10*time.Second) {
		t.Errorf("the old worker %d still drains 10s after the reload, with nothing to serve", old)
	}
}

// keptAlive is one raw keep-alive connection, so that a test knows which
// connection a request goes out on.
type keptAlive struct {
	conn net.Conn
	br   *bufio.Reader
}

func dialKeptAlive(t *testing.T, c *ct.Cluster) *keptAlive {
	t.Helper()
	conn, err := net.DialTimeout("tcp", c.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &keptAlive{conn: conn, br: bufio.NewReader(conn)}
}

// get sends GET path on the connection and returns the response and body.
func (k *keptAlive) get(path string) (*http.Response, string, error) {
	k.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(k.conn, "GET %s HTTP/1.1\r\nHost: brood\r\n\r\n", path); err != nil {
		return nil, "", err
	}
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// A reload must not fail a keep-alive client that pauses between requests
// for longer than a drain used to wait: its idle connection to the old
// worker answers its next request, with Connection: close, and only then
// closes. A stop of the whole cluster does not wait for such clients.
func TestReloadKeepsIdleConnectionsForTheirNextRequest(t *testing.T) {
	c := startBasic(t, "BROOD_WORKERS=1", "BROOD_SHUTDOWN_TIMEOUT=20s")
	k := dialKeptAlive(t, c)
	_, body, err := k.get("/pid")
	if err != nil {
		t.Fatal(err)
	}
	old, _ := strconv.Atoi(strings.Fields(body)[0])
	c.Signal(syscall.SIGHUP)
	waitMsg(t, c, 0, "reload complete", 60*time.Second)
	time.Sleep(3 * time.Second) // a client's pause, longer than drainIdleGrace
	resp, body, err := k.get("/pid")
	if err != nil {
		t.Fatalf("the request after a pause on a connection kept alive through a reload: %v", err)
	}
	if !resp.Close || !strings.HasPrefix(body, strconv.Itoa(old)+" ") {
		t.Errorf("got close=%v from %q, want Connection: close from the old worker %d", resp.Close, body, old)
	}
	if !exits(old, 10*time.Second) {
		t.Errorf("the old worker %d still runs after its last client left", old)
	}

	idle := dialKeptAlive(t, c)
	if _, _, err := idle.get("/"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.Signal(syscall.SIGTERM)
	exitsCleanly(t, c, 15*time.Second)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("a stop with an idle keep-alive connection took %s; it waits for no client", d)
	}
}
