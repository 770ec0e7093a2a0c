package framework

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestOptionsInCodeAreValidatedByName(t *testing.T) {
	tests := []struct {
		opt  Option
		want string
	}{
		{WithWorkers(0), "WithWorkers 0: workers must be between 1 and 512"},
		{WithWorkers(MaxWorkers + 1), "WithWorkers 513"},
		{WithAddr("localhost"), `WithAddr "localhost": want host:port`},
		{WithShutdownTimeout(-time.Second), "WithShutdownTimeout -1s"},
		{WithStartTimeout(0), "WithStartTimeout 0s"},
		{WithHangTimeout(time.Millisecond), "WithHangTimeout 1ms: want 0s (off) or at least 100ms"},
		{WithMaxRSS(-1), "WithMaxRSS -1"},
		{WithTrustedProxies("10.0.0.0/99"), "WithTrustedProxies"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := resolve([]Option{tt.opt}, env(nil))
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v; want a configuration error saying %q", err, tt.want)
			}
		})
	}
}

func TestEnvironmentOverridesCode(t *testing.T) {
	c, err := resolve([]Option{WithWorkers(3), WithAddr(":9000"), WithHangTimeout(time.Minute)},
		env(map[string]string{"BROOD_WORKERS": "2", "PORT": "9100", "BROOD_HANG_TIMEOUT": "0s"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.workers != 2 || c.addr != ":9100" || c.ops.hangTimeout != 0 {
		t.Errorf("got workers %d, addr %q, hang timeout %s; want 2, \":9100\", 0s", c.workers, c.addr, c.ops.hangTimeout)
	}
	if c.source["workers"] != "$BROOD_WORKERS" || c.source["addr"] != "$PORT" {
		t.Errorf("sources %v; want the environment named", c.source)
	}
	// BROOD_ADDR wins over PORT.
	c, err = resolve(nil, env(map[string]string{"PORT": "9100", "BROOD_ADDR": "127.0.0.1:9200"}))
	if err != nil || c.addr != "127.0.0.1:9200" {
		t.Errorf("addr %q, %v; want 127.0.0.1:9200", c.addr, err)
	}
}

func TestDefaults(t *testing.T) {
	c, err := resolve(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.addr != ":8080" || c.workers < 1 || c.shutdownTimeout != 30*time.Second || c.ops.hangTimeout != 30*time.Second {
		t.Errorf("defaults: addr %q workers %d shutdown %s hang %s", c.addr, c.workers, c.shutdownTimeout, c.ops.hangTimeout)
	}
}

// configErrors returns the ConfigErrors a refused configuration reports.
func configErrors(t *testing.T, err error) []*ConfigError {
	t.Helper()
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("got %v; want a configuration error", err)
	}
	var out []*ConfigError
	var walk func(error)
	walk = func(e error) {
		if ce, ok := e.(*ConfigError); ok {
			out = append(out, ce)
			return
		}
		if u, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range u.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	return out
}

// Each refused value is reported once, by the name it was given with
// (resolveLogEnv and validateLogs used to run twice: WithLogKeep(-1) and
// $BROOD_LOG_KEEP errors were printed twice).
func TestEachRefusedValueIsReportedOnceByItsSource(t *testing.T) {
	tests := []struct {
		opts []Option
		env  map[string]string
		want string // the ConfigError's Option
	}{
		{[]Option{WithLogKeep(-1)}, nil, "WithLogKeep"},
		{nil, map[string]string{"BROOD_LOG_KEEP": "-1"}, "$BROOD_LOG_KEEP"},
		{nil, map[string]string{"BROOD_LOG_KEEP": "lots"}, "$BROOD_LOG_KEEP"},
		{[]Option{WithLogMaxSize(100)}, nil, "WithLogMaxSize"},
		{nil, map[string]string{"BROOD_LOG_MAX_SIZE": "1KB"}, "$BROOD_LOG_MAX_SIZE"},
		{nil, map[string]string{"BROOD_LOG_DAILY": "nightly"}, "$BROOD_LOG_DAILY"},
		{[]Option{WithMaxRSS(1)}, nil, "WithMaxRSS"},
		{[]Option{WithMaxRSS(0)}, map[string]string{"BROOD_MAX_RSS": "1"}, "$BROOD_MAX_RSS"},
		{nil, map[string]string{"BROOD_MAX_RSS": "lots"}, "$BROOD_MAX_RSS"},
		{[]Option{WithTrustedProxies("10.0.0.0/99")}, nil, "WithTrustedProxies"},
		{nil, map[string]string{"BROOD_TRUSTED_PROXIES": "10.0.0.0/99"}, "$BROOD_TRUSTED_PROXIES"},
		{nil, map[string]string{"BROOD_MAX_REQUESTS": "-5"}, "$BROOD_MAX_REQUESTS"},
		{[]Option{WithHangTimeout(time.Millisecond)}, nil, "WithHangTimeout"},
		{nil, map[string]string{"BROOD_HANG_TIMEOUT": "1ms"}, "$BROOD_HANG_TIMEOUT"},
		{nil, map[string]string{"BROOD_LOG_FORMAT": "xml"}, "$BROOD_LOG_FORMAT"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := resolve(tt.opts, env(tt.env))
			errs := configErrors(t, err)
			if len(errs) != 1 {
				t.Fatalf("%d errors (%v); want 1", len(errs), err)
			}
			if errs[0].Option != tt.want {
				t.Errorf("error names %s; want %s: %v", errs[0].Option, tt.want, errs[0])
			}
		})
	}
}

// BROOD_MAX_RSS=1 used to be accepted, and every worker was replaced every
// second: a limit below an idle worker's memory is refused, naming the
// minimum.
func TestMaxRSSBelowAnIdleWorkerIsRefused(t *testing.T) {
	_, err := resolve(nil, env(map[string]string{"BROOD_MAX_RSS": "1MB"}))
	errs := configErrors(t, err)
	if len(errs) != 1 || !strings.Contains(errs[0].Want, "at least 16777216 bytes") {
		t.Errorf("got %v; want one error naming the minimum", err)
	}
	for _, ok := range []string{"0", "16MiB", "512MB"} {
		if _, err := resolve(nil, env(map[string]string{"BROOD_MAX_RSS": ok})); err != nil {
			t.Errorf("BROOD_MAX_RSS=%s: %v; want it accepted", ok, err)
		}
	}
}

// Every option records where its value came from, for the configuration
// line and for errors.
func TestOptionsRecordTheirSource(t *testing.T) {
	opts := []Option{WithMaxRequests(10, 2), WithMaxRSS(64 << 20), WithControlSocket("/tmp/x.sock"),
		WithPIDFile("/tmp/x.pid"), WithTrustedProxies("10.0.0.0/8"), WithName("shop")}
	c, err := resolve(opts, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"max_requests", "max_rss", "control_socket", "pid_file", "trusted_proxies", "name"} {
		if c.source[key] != "code" {
			t.Errorf("source of %s: %q; want code", key, c.source[key])
		}
	}
	c, err = resolve(opts, env(map[string]string{"BROOD_MAX_REQUESTS": "5", "BROOD_MAX_RSS": "32MiB",
		"BROOD_CONTROL_SOCKET": "-", "BROOD_PIDFILE": "/run/x.pid", "BROOD_TRUSTED_PROXIES": "10.1.0.0/16"}))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"max_requests": "$BROOD_MAX_REQUESTS", "max_rss": "$BROOD_MAX_RSS",
		"control_socket": "$BROOD_CONTROL_SOCKET", "pid_file": "$BROOD_PIDFILE", "trusted_proxies": "$BROOD_TRUSTED_PROXIES"} {
		if c.source[key] != want {
			t.Errorf("source of %s: %q; want %s", key, c.source[key], want)
		}
	}
	if c.ops.maxRequests != 5 || c.ops.maxRSS != 32<<20 || c.ops.controlSocket != "-" || c.ops.pidFile != "/run/x.pid" {
		t.Errorf("environment not applied: %+v", c.ops)
	}
}
