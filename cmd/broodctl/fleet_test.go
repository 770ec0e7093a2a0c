package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/broodhq/brood/fleet"
	"github.com/broodhq/brood/internal/redistest"
)

// status --fleet lists the hosts the app's agents published, and only
// that app's.
func TestStatusFleet(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	ctx := context.Background()
	put := func(app, id string, h fleet.Host) {
		b, _ := json.Marshal(h)
		key := strings.TrimSuffix(fleet.HostKeyPattern(app), "*") + id
		if err := rdb.Set(ctx, key, b, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	put("shop", "a", fleet.Host{Host: "web1", Addr: ":8080", PID: 11, Workers: 4, Uptime: "1h0m0s", Leader: true, Epoch: 3})
	put("shop", "b", fleet.Host{Host: "web2", Addr: ":8080", PID: 22, Workers: 4, Uptime: "5m0s"})
	put("blog", "c", fleet.Host{Host: "web3", Addr: ":9090", PID: 33})

	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"-app", "shop", "-redis", srv.URL(0), "status", "--fleet"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	got := out.String()
	for _, want := range []string{"fleet shop: 2 hosts", "web1", "holder (epoch 3)", "web2", "5m0s"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "web3") {
		t.Errorf("output lists another application's host:\n%s", got)
	}
	if code := run(ctx, []string{"status", "--fleet", "-redis", srv.URL(0)}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "-app NAME") {
		t.Errorf("without -app: exit %d, stderr %q; want 1 and a hint", code, errOut.String())
	}
}
