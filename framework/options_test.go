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
