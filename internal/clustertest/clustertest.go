package clustertest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const envApp = "BROOD_TEST_APP"

// Main runs the application named by $BROOD_TEST_APP and exits, or runs the
// tests when it is unset. Each application calls framework.Run.
func Main(m *testing.M, apps map[string]func() error) {
	if name := os.Getenv(envApp); name != "" {
		run, ok := apps[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "clustertest: no application %q\n", name)
			os.Exit(3)
		}
		if err := run(); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Cluster is a running master started by Start.
type Cluster struct {
	t      testing.TB
	Cmd    *exec.Cmd
	Addr   string // host:port from the ready line, once ready
	Scheme string // http or https, from the ready line

	mu    sync.Mutex
	lines []map[string]any
	raw   bytes.Buffer
	more  chan struct{}
	done  chan struct{}
	err   error // from Wait
}

// Start runs the application app as a master with env added to the
// environment, in its own process group, and kills that group at cleanup.
func Start(t testing.TB, app string, env ...string) *Cluster {
	t.Helper()
	return StartExe(t, os.Args[0], app, env...)
}

// StartExe is Start with another copy of the test binary as the master.
func StartExe(t testing.TB, exe, app string, env ...string) *Cluster {
	t.Helper()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envApp+"="+app, "BROOD_LOG_FORMAT=json", "BROOD_LOG_LEVEL=debug")
	// The agent's store: a data directory of its own for each cluster,
	// unless the test chose one (clusters sharing one refuse to start).
	if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "BROOD_DATA_DIR=") }) {
		cmd.Env = append(cmd.Env, "BROOD_DATA_DIR="+t.TempDir())
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = os.Stdout
	c := &Cluster{t: t, Cmd: cmd, more: make(chan struct{}), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The group is ours: the master and every child it started.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-c.done
		if t.Failed() {
			c.mu.Lock()
			t.Logf("cluster output:\n%s", c.raw.String())
			c.mu.Unlock()
		}
	})
	go c.read(stderr)
	return c
}

func (c *Cluster) read(r io.Reader) {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		var m map[string]any
		_ = json.Unmarshal(s.Bytes(), &m)
		c.mu.Lock()
		c.raw.Write(s.Bytes())
		c.raw.WriteByte('\n')
		if m != nil {
			c.lines = append(c.lines, m)
		}
		close(c.more)
		c.more = make(chan struct{})
		c.mu.Unlock()
	}
	err := c.Cmd.Wait()
	c.mu.Lock()
	c.err = err
	close(c.more)
	c.mu.Unlock()
	close(c.done)
}

// WaitLog waits for a log record (from any process of the cluster) that
// match accepts, skipping the first `after` records, and returns it with its
// index.
func (c *Cluster) WaitLog(timeout time.Duration, after int, match func(map[string]any) bool) (map[string]any, int, error) {
	deadline := time.After(timeout)
	for i := after; ; {
		c.mu.Lock()
		for ; i < len(c.lines); i++ {
			if match(c.lines[i]) {
				l := c.lines[i]
				c.mu.Unlock()
				return l, i, nil
			}
		}
		more := c.more
		exited := c.err != nil || isClosed(c.done)
		c.mu.Unlock()
		if exited {
			return nil, i, fmt.Errorf("master exited before the log line came")
		}
		select {
		case <-more:
		case <-deadline:
			return nil, i, fmt.Errorf("no matching log line within %s", timeout)
		}
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Msg matches records whose message starts with prefix.
func Msg(prefix string) func(map[string]any) bool {
	return func(m map[string]any) bool {
		s, _ := m["msg"].(string)
		return strings.HasPrefix(s, prefix)
	}
}

// WaitReady waits for the ready line ("ready on http://ADDR ..." or
// https://) and records the address and scheme.
func (c *Cluster) WaitReady(timeout time.Duration) {
	c.t.Helper()
	l, _, err := c.WaitLog(timeout, 0, Msg("ready on http"))
	if err != nil {
		c.t.Fatalf("cluster not ready: %v", err)
	}
	msg := l["msg"].(string)
	scheme, rest, ok := strings.Cut(strings.TrimPrefix(msg, "ready on "), "://")
	if !ok {
		c.t.Fatalf("ready line %q has no URL", msg)
	}
	c.Scheme, c.Addr = scheme, strings.Fields(rest)[0]
}

// Lines returns how many records have been read so far.
func (c *Cluster) Lines() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.lines)
}

// Output returns everything the cluster wrote to stderr so far.
func (c *Cluster) Output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.raw.String()
}

// Messages returns the msg field of every record so far, one a line:
// unlike Output, quotes inside messages are not escaped.
func (c *Cluster) Messages() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, l := range c.lines {
		s, _ := l["msg"].(string)
		b.WriteString(s)
		b.WriteByte('\n')
	}
	return b.String()
}

// Wait waits for the master to exit and returns its exit error.
func (c *Cluster) Wait(timeout time.Duration) (error, bool) {
	select {
	case <-c.done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.err, true
	case <-time.After(timeout):
		return nil, false
	}
}

// Signal sends sig to the master.
func (c *Cluster) Signal(sig syscall.Signal) {
	c.t.Helper()
	if err := c.Cmd.Process.Signal(sig); err != nil {
		c.t.Fatalf("signal master: %v", err)
	}
}

// URL returns the address of path on the cluster.
func (c *Cluster) URL(path string) string { return c.Scheme + "://" + c.Addr + path }

// Children returns the pids of the master's child processes.
func (c *Cluster) Children() []int { return ChildrenOf(c.Cmd.Process.Pid) }

// ChildrenOf lists the live children of pid by scanning /proc: children may
// hang off any thread of a Go process, so one task's children file is not
// enough.
func ChildrenOf(pid int) []int { return childrenByScan(pid) }

func childrenByScan(ppid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		var state string
		var pp int
		if _, err := fmt.Sscanf(string(stat[i+2:]), "%s %d", &state, &pp); err == nil && pp == ppid && state != "Z" {
			out = append(out, pid)
		}
	}
	return out
}

// Alive reports whether pid exists and is not a zombie.
func Alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && len(stat) > i+2 && stat[i+2] != 'Z'
}

// Client is an HTTP client that does not reuse connections between tests.
func Client(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
}

// Get fetches url and returns the status and body.
func Get(client *http.Client, url string) (int, string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
