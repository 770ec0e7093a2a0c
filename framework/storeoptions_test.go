package framework

import (
	"errors"
	"strings"
	"testing"
)

// TestStoreURLIsCheckedBeforeStart: a store URL no linked backend handles
// is refused by resolve, before anything starts, naming where it came from.
// (This test binary does not link store/redisstore.)
func TestStoreURLIsCheckedBeforeStart(t *testing.T) {
	tests := []struct {
		opts []Option
		env  map[string]string
		want string
	}{
		{[]Option{WithStore("redis://127.0.0.1:6379/0")}, nil, `WithStore="redis://127.0.0.1:6379/0": the redis backend is not linked: add import _ "github.com/broodhq/brood/store/redisstore"`},
		{nil, map[string]string{"BROOD_STORE": "ftp://x"}, `$BROOD_STORE="ftp://x": no store backend for "ftp"`},
		{[]Option{WithStore("redis://a")}, map[string]string{"BROOD_STORE": "not a url"}, `$BROOD_STORE="not a url": want a URL`},
	}
	for _, tt := range tests {
		_, err := resolve(tt.opts, env(tt.env))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("got %v; want a configuration error saying %q", err, tt.want)
		}
	}
	if _, err := resolve([]Option{WithDataDir("/tmp/x"), WithStoreSync()}, env(nil)); err != nil {
		t.Errorf("no store URL: %v; want nil", err)
	}
}
