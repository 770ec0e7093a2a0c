package framework

import (
	"net/url"
	"strconv"

	"github.com/broodhq/brood/internal/fleetlink"
)

// WithFleet makes every brood master with the same name (WithName) on the
// Redis at redisURL (redis://host:port/db) one fleet of hosts: agent jobs
// registered with agent.OncePerFleet run on one host per tick,
// Messenger.BroadcastFleet reaches every host, each host publishes its
// status (broodctl status --fleet), and the store's default backend becomes
// that Redis (WithStore chooses another). Link the implementation with
// import _ "github.com/broodhq/brood/fleet"; package fleet documents the
// lease timing (lease= and renew= URL parameters) and what happens while
// Redis is unreachable: HTTP serving never depends on it. Overridden by
// $BROOD_FLEET_REDIS.
func WithFleet(redisURL string) Option {
	return func(c *config) { c.fleetURL = redisURL; c.source["fleet"] = "code" }
}

// validateFleet refuses a fleet URL that is not redis:// or rediss://, or
// a fleet without the implementation linked.
func (c *config) validateFleet(name func(key, opt string) string) []error {
	if c.fleetURL == "" {
		return nil
	}
	opt := name("fleet", "WithFleet")
	u, err := url.Parse(c.fleetURL)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return []error{&ConfigError{opt, strconv.Quote(c.fleetURL), "want a Redis URL such as redis://127.0.0.1:6379/0", err}}
	}
	if !fleetlink.Linked() {
		return []error{&ConfigError{opt, strconv.Quote(c.fleetURL), `the fleet needs import _ "github.com/broodhq/brood/fleet" in the program`, nil}}
	}
	return nil
}

// fleetConfig is what the agent opens the fleet with; the store's default
// backend in a fleet is its Redis.
func (c *config) fleetConfig() (fleetURL, storeURL, storeFrom string) {
	if c.fleetURL == "" || c.store.url != "" {
		return c.fleetURL, "", ""
	}
	from := "framework.WithFleet"
	if c.source["fleet"] == "$"+fleetlink.EnvRedis {
		from = "$" + fleetlink.EnvRedis
	}
	return c.fleetURL, storeURLOf(c.fleetURL), from
}

// storeURLOf drops the fleet's own parameters, which the store does not
// know.
func storeURLOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	q.Del("lease")
	q.Del("renew")
	u.RawQuery = q.Encode()
	return u.String()
}
