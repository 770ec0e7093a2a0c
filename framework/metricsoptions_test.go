package framework

import (
	"errors"
	"testing"
)

func TestMetricsAddr(t *testing.T) {
	tests := []struct {
		name, code, env, want string
		bad                   bool
	}{
		{name: "off by default"},
		{name: "from code", code: "127.0.0.1:9090", want: "127.0.0.1:9090"},
		{name: "env overrides code", code: "127.0.0.1:9090", env: "127.0.0.1:9100", want: "127.0.0.1:9100"},
		{name: "env turns it off", code: "127.0.0.1:9090", env: "-", want: ""},
		{name: "no port", code: "127.0.0.1", bad: true},
		{name: "port out of range", env: "127.0.0.1:70000", bad: true},
		{name: "the application's port", code: ":8080", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []Option
			if tt.code != "" {
				opts = append(opts, WithMetricsAddr(tt.code))
			}
			c, err := resolve(opts, func(k string) string {
				if k == "BROOD_METRICS_ADDR" {
					return tt.env
				}
				return ""
			})
			if tt.bad {
				if !errors.Is(err, ErrConfig) {
					t.Fatalf("err = %v, want ErrConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.metrics.addr != tt.want {
				t.Fatalf("metrics addr %q, want %q", c.metrics.addr, tt.want)
			}
		})
	}
}
