package fleet

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
)

// The lease's value is "HOLDER EPOCH"; the epoch counter only grows, and
// changes whenever the holder does.
var acquireScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local sep = string.find(cur, ' ', 1, true)
  if string.sub(cur, 1, sep - 1) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(string.sub(cur, sep + 1))
  end
  return -tonumber(string.sub(cur, sep + 1))
end
local e = redis.call('INCR', KEYS[2])
local floor = tonumber(ARGV[3])
if e <= floor then
  e = floor + 1
  redis.call('SET', KEYS[2], e)
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. e, 'PX', ARGV[2])
return e
`)

var releaseScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. ' ' then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`)

// keys are one fleet's Redis keys: "brood:{APP}:fleet:...", the
// application's name a hash tag as in package redisstore.
type keys struct {
	lease, epoch, tick, stream, host string
}

func keysFor(app string) keys {
	p := "brood:{" + url.QueryEscape(app) + "}:fleet:"
	return keys{lease: p + "lease", epoch: p + "epoch", tick: p + "tick:", stream: p + "msgs", host: p + "host:"}
}

// HostKeyPattern matches the status keys of app's hosts (for broodctl).
func HostKeyPattern(app string) string { return keysFor(app).host + "*" }

type redisBackend struct {
	rdb redis.UniversalClient
	k   keys
}

func (b *redisBackend) acquire(ctx context.Context, holder string, ttl time.Duration, floor int64) (int64, error) {
	e, err := acquireScript.Run(ctx, b.rdb, []string{b.k.lease, b.k.epoch}, holder, ttl.Milliseconds(), floor).Int64()
	if err != nil {
		return 0, fmt.Errorf("fleet lease: %w", err)
	}
	return e, nil
}

func (b *redisBackend) release(ctx context.Context, holder string) error {
	if err := releaseScript.Run(ctx, b.rdb, []string{b.k.lease}, holder).Err(); err != nil {
		return fmt.Errorf("fleet lease release: %w", err)
	}
	return nil
}

func (b *redisBackend) claim(ctx context.Context, key, holder string, ttl time.Duration) (bool, error) {
	err := b.rdb.SetArgs(ctx, key, holder, redis.SetArgs{Mode: "NX", TTL: ttl}).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("fleet tick claim: %w", err)
	}
	return true, nil
}

// parseURL splits brood's own parameters (lease=, renew=) off a redis://
// URL and returns go-redis's options for the rest.
func parseURL(raw string) (*redis.Options, Timing, error) {
	var t Timing
	u, err := url.Parse(raw)
	if err != nil {
		return nil, t, fmt.Errorf("fleet URL: %w", err)
	}
	q := u.Query()
	for name, d := range map[string]*time.Duration{"lease": &t.Lease, "renew": &t.Renew} {
		if v := q.Get(name); v != "" {
			x, err := time.ParseDuration(v)
			if err != nil || x <= 0 {
				return nil, t, fmt.Errorf("fleet URL: %s=%q: want a duration such as 10s", name, v)
			}
			*d = x
			q.Del(name)
		}
	}
	u.RawQuery = q.Encode()
	o, err := redis.ParseURL(u.String())
	if err != nil {
		return nil, t, fmt.Errorf("fleet URL: %w", err)
	}
	for _, d := range []*time.Duration{&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout} {
		if *d == 0 {
			*d = time.Second
		}
	}
	o.MaxRetries = -1 // the loops retry; a failed call must fail fast
	t = t.withDefaults()
	if t.Renew >= t.Lease-t.Margin {
		return nil, t, fmt.Errorf("fleet URL: renew=%v must be well below lease=%v", t.Renew, t.Lease)
	}
	return o, t, nil
}
