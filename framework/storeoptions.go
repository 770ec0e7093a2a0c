package framework

import (
	"os"
	"strings"

	"github.com/broodhq/brood/internal/storeagent"
	"github.com/broodhq/brood/internal/storeurl"
)

// storeOptions are the store's settings, with $BROOD_STORE, $BROOD_DATA_DIR
// and $BROOD_STORE_SYNC read by fromEnv; the agent opens the store with them
// (storeagent.Open).
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
	return func(c *config) { c.store.dataDir = dir; c.source["data_dir"] = "code" }
}

// WithStore keeps the cluster's store in a backend given by URL instead of
// the agent's database, e.g. "redis://127.0.0.1:6379/0" for Redis (import
// _ "github.com/broodhq/brood/store/redisstore" to link it), so that several
// hosts share it; the agent alone talks to the backend. Overridden by
// $BROOD_STORE.
func WithStore(url string) Option {
	return func(c *config) { c.store.url = url; c.source["store"] = "code" }
}

// WithStoreSync makes the agent's database fsync its write-ahead log
// after each group of writes, before it acknowledges them, so that they
// survive a power cut too, not only the death of processes. Also
// $BROOD_STORE_SYNC=1.
func WithStoreSync() Option {
	return func(c *config) { c.store.sync = true }
}

// check refuses, before anything starts, a store URL that no linked
// backend handles.
func (o storeOptions) check(name func(key, opt string) string) []error {
	if o.url == "" {
		return nil
	}
	if err := storeurl.Check(o.url, name("store", "WithStore")); err != nil {
		return []error{err}
	}
	return nil
}

// storeConfig is what the agent needs to open the store before its hooks.
func (c *config) storeConfig() storeagent.Config {
	// The default name comes from os.Args[0], which in the agent is the
	// process title the master gave it ("NAME: agent"): the store's
	// namespace and default directory must be the application's.
	name := c.name
	if name == baseName(os.Args[0]) {
		name = strings.TrimSuffix(name, ": agent")
	}
	from := func(key, opt string) string {
		if s := c.source[key]; strings.HasPrefix(s, "$") {
			return s
		}
		return opt
	}
	return storeagent.Config{
		App: name, URL: c.store.url, URLFrom: from("store", "framework.WithStore"),
		DataDir: c.store.dataDir, DataDirFrom: from("data_dir", "framework.WithDataDir"),
		Sync: c.store.sync,
	}
}
