package fleet

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/broodhq/brood/internal/fleetlink"
)

// Host is one host's published status.
type Host = fleetlink.Status

// Hosts reads the status every host of app's fleet on the Redis at
// redisURL published, sorted by host and address; a host that stopped
// publishing drops out within three renewal intervals. For tools
// (broodctl status --fleet); the hosts' agents are what talk to Redis.
func Hosts(ctx context.Context, redisURL, app string) ([]Host, error) {
	o, _, err := parseURL(redisURL)
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(o)
	defer rdb.Close()
	var keys []string
	iter := rdb.Scan(ctx, 0, HostKeyPattern(app), 100).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("fleet hosts on %s: %w", o.Addr, err)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	vals, err := rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("fleet hosts on %s: %w", o.Addr, err)
	}
	var hosts []Host
	for _, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue // expired between SCAN and MGET
		}
		var h Host
		if json.Unmarshal([]byte(s), &h) == nil {
			hosts = append(hosts, h)
		}
	}
	slices.SortFunc(hosts, func(a, b Host) int {
		return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.Addr, b.Addr))
	})
	return hosts, nil
}
