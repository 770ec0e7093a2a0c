//go:build unix

package sdnotify

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// receiver listens where NOTIFY_SOCKET points for the rest of the test.
func receiver(t *testing.T, addr string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv(EnvSocket, addr)
	return c
}

func next(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("read datagram: %v", err)
	}
	return string(buf[:n])
}

func TestUnsetIsNoop(t *testing.T) {
	t.Setenv(EnvSocket, "")
	for _, f := range []func() error{Ready, Reloading, Stopping, Watchdog} {
		if err := f(); err != nil {
			t.Errorf("without %s: got %v, want nil", EnvSocket, err)
		}
	}
}

func TestDatagrams(t *testing.T) {
	c := receiver(t, filepath.Join(t.TempDir(), "notify"))
	tests := []struct {
		name string
		send func() error
		want string
	}{
		{"ready", Ready, "READY=1"},
		{"stopping", Stopping, "STOPPING=1"},
		{"watchdog", Watchdog, "WATCHDOG=1"},
		{"status", func() error { return Status("2 workers\nreloading\r\n") }, "STATUS=2 workers reloading "},
		{"custom", func() error { return Notify("EXTEND_TIMEOUT_USEC=5000000") }, "EXTEND_TIMEOUT_USEC=5000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.send(); err != nil {
				t.Fatal(err)
			}
			if got := next(t, c); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReloadingCarriesMonotonicTime(t *testing.T) {
	c := receiver(t, filepath.Join(t.TempDir(), "notify"))
	before, ok := monotonicUsec()
	if err := Reloading(); err != nil {
		t.Fatal(err)
	}
	after, _ := monotonicUsec()
	got := next(t, c)
	if !ok {
		if got != "RELOADING=1" {
			t.Errorf("got %q, want RELOADING=1 alone where there is no monotonic clock", got)
		}
		return
	}
	lines := strings.Split(got, "\n")
	if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("got %q, want RELOADING=1 and MONOTONIC_USEC", got)
	}
	usec, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
	if err != nil || usec < before || usec > after {
		t.Errorf("MONOTONIC_USEC: got %s, want between %d and %d", lines[1], before, after)
	}
}

func TestBadSocket(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"relative/notify", "neither an absolute path"},
		{"vsock:2:1234", "neither an absolute path"},
		{filepath.Join(t.TempDir(), "nobody"), "sd_notify"},
	}
	for _, tt := range tests {
		t.Setenv(EnvSocket, tt.addr)
		if err := Ready(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s=%q: got %v, want an error containing %q", EnvSocket, tt.addr, err, tt.want)
		}
	}
}

func TestWatchdogInterval(t *testing.T) {
	me := strconv.Itoa(os.Getpid())
	tests := []struct {
		usec, pid string
		want      time.Duration
		ok        bool
	}{
		{"", "", 0, false},
		{"garbage", "", 0, false},
		{"0", "", 0, false},
		{"30000000", "", 30 * time.Second, true},
		{"30000000", me, 30 * time.Second, true},
		{"30000000", "1", 0, false},
	}
	for _, tt := range tests {
		t.Setenv("WATCHDOG_USEC", tt.usec)
		t.Setenv("WATCHDOG_PID", tt.pid)
		got, ok := WatchdogInterval()
		if got != tt.want || ok != tt.ok {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: got %v, %v; want %v, %v", tt.usec, tt.pid, got, ok, tt.want, tt.ok)
		}
	}
}
