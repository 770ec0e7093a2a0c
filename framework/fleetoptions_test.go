package framework

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/broodhq/brood/internal/fleetlink"
)

// The fleet's URL is checked before anything starts, naming where it came
// from; with a fleet, the store's default backend is its Redis, without
// brood's own URL parameters, unless the user chose a store.
func TestFleetOption(t *testing.T) {
	tests := []struct {
		opts []Option
		env  map[string]string
		want string
	}{
		{[]Option{WithFleet("http://127.0.0.1:6379")}, nil, `WithFleet "http://127.0.0.1:6379": want a Redis URL`},
		{nil, map[string]string{"BROOD_FLEET_REDIS": "redis://127.0.0.1:6379/0"}, `$BROOD_FLEET_REDIS "redis://127.0.0.1:6379/0": the fleet needs import _ "github.com/broodhq/brood/fleet"`},
	}
	for _, tt := range tests {
		_, err := resolve(tt.opts, env(tt.env))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("got %v; want a configuration error saying %q", err, tt.want)
		}
	}

	// This test binary does not link package fleet: stand in for it, and
	// leave it unlinked again for the next run (-count).
	fleetlink.Register(func(context.Context, fleetlink.Config) (fleetlink.Fleet, error) {
		return nil, errors.New("not for this test")
	})
	t.Cleanup(func() { fleetlink.Register(nil) })
	c, err := resolve([]Option{WithFleet("redis://10.0.0.1:6379/2?lease=5s&renew=1s")}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if fu, su, from := c.fleetConfig(); fu != "redis://10.0.0.1:6379/2?lease=5s&renew=1s" || su != "redis://10.0.0.1:6379/2" || from != "framework.WithFleet" {
		t.Errorf("fleetConfig: got %q %q %q; want the URL, the store's without lease/renew, from WithFleet", fu, su, from)
	}
	c, err = resolve([]Option{WithFleet("redis://10.0.0.1:6379/2"), WithStore("redis://10.0.0.9:6379/0")}, env(nil))
	if err == nil {
		if _, su, _ := c.fleetConfig(); su != "" {
			t.Errorf("with WithStore too, the fleet chose the store: %q", su)
		}
	}
}
