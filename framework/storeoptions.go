package framework

import (
	"context"
	"log/slog"
	"os"
	"strings"

	"github.com/broodhq/brood/internal/storeagent"
	"github.com/broodhq/brood/internal/storeurl"
	"github.com/broodhq/brood/store"
)

// storeOptions are the store's settings; the agent resolves them (and their
// environment variables) in storeagent.Open.
type storeOptions struct {
	url     string
	dataDir string
	sync    bool
}

// WithDataDir sets the directory of the agent's store database (store.db).
// The default is $XDG_STATE_HOME/brood/NAME (~/.local/state/brood/NAME),
// NAME being WithName's; if that cannot be written, the agent says so and
// keeps the store in memory. A directory given here must be writable, and
// only one cluster may use it at a time. Overridden by $BROOD_DATA_DIR.
func WithDataDir(dir string) Option {
	return func(c *config) { c.store.dataDir = dir }
}

// WithStore keeps the cluster's store in a backend given by URL instead of
// the agent's database, e.g. "redis://127.0.0.1:6379/0" for Redis (import
// _ "github.com/broodhq/brood/store/redisstore" to link it), so that several
// hosts share it; the agent alone talks to the backend. Overridden by
// $BROOD_STORE.
func WithStore(url string) Option {
	return func(c *config) { c.store.url = url }
}

// WithStoreSync makes the agent's database fsync every commit before it
// acknowledges the writes in it, so that they survive a power cut too, not
// only the death of processes. Also $BROOD_STORE_SYNC=1.
func WithStoreSync() Option {
	return func(c *config) { c.store.sync = true }
}

// check refuses, before anything starts, a store URL that no linked
// backend handles; the agent opens it (and reads the environment again).
func (o storeOptions) check(getenv func(string) string) []error {
	raw, from := o.url, "WithStore"
	if v := getenv(storeagent.EnvStore); v != "" {
		raw, from = v, "$"+storeagent.EnvStore
	}
	if raw == "" {
		return nil
	}
	if err := storeurl.Check(raw, from); err != nil {
		return []error{err}
	}
	return nil
}

// openStore opens the agent's store, before its hooks.
func openStore(c *config, log *slog.Logger) (store.Store, error) {
	// The default name comes from os.Args[0], which in the agent is the
	// process title the master gave it ("NAME: agent"): the store's
	// namespace and default directory must be the application's.
	name := c.name
	if name == baseName(os.Args[0]) {
		name = strings.TrimSuffix(name, ": agent")
	}
	return storeagent.Open(context.Background(), storeagent.Config{
		App: name, URL: c.store.url, DataDir: c.store.dataDir, Sync: c.store.sync, Logger: log,
	})
}
