package storeagent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/broodhq/brood/internal/storeurl"
	"github.com/broodhq/brood/store"
	"github.com/broodhq/brood/store/boltstore"
	"github.com/broodhq/brood/store/memstore"
)

// The environment variables that override the store's options; framework
// reads them (with every other option) and passes the result in Config.
const (
	EnvStore   = "BROOD_STORE"      // a backend URL: redis://host:port/db
	EnvDataDir = "BROOD_DATA_DIR"   // the agent database's directory
	EnvSync    = "BROOD_STORE_SYNC" // "1": fsync every group of writes
)

// FileName is the database's name in the data directory.
const FileName = "store.db"

// Config is what the framework knows of the store's options.
type Config struct {
	App         string // the application's name: default directory, Redis namespace
	URL         string // framework.WithStore or $BROOD_STORE
	URLFrom     string // where URL came from, for messages
	DataDir     string // framework.WithDataDir or $BROOD_DATA_DIR
	DataDirFrom string // where DataDir came from, for messages
	Sync        bool   // framework.WithStoreSync or $BROOD_STORE_SYNC
	Logger      *slog.Logger
	// Getenv reads $XDG_STATE_HOME and $HOME for the default directory;
	// nil: os.Getenv.
	Getenv func(string) string
}

// Open opens the agent's store as the package documentation says. The
// caller closes it after the agent's OnStop hooks.
func Open(ctx context.Context, c Config) (store.Store, error) {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Getenv == nil {
		c.Getenv = os.Getenv
	}
	log := c.Logger
	url, urlFrom := c.URL, c.URLFrom
	if urlFrom == "" {
		urlFrom = "framework.WithStore"
	}
	if url != "" {
		s, err := storeurl.Open(ctx, url, urlFrom, c.App, log)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		log.Info("store: backend from "+urlFrom, "url", redact(url), "app", c.App)
		return s, nil
	}
	sync := c.Sync
	dir, dirFrom := c.DataDir, c.DataDirFrom
	if dirFrom == "" {
		dirFrom = "framework.WithDataDir"
	}
	if dir != "" {
		return openDir(dir, dirFrom, sync, log)
	}
	dir, err := defaultDir(c.Getenv, c.App)
	if err != nil {
		log.Warn("store: no per-user data directory; keeping the store in memory, so it lives only as long as the agent: set framework.WithDataDir or $"+EnvDataDir, "err", err)
		return memstore.New(), nil
	}
	s, err := openDir(dir, "the default data directory", sync, log)
	if errors.Is(err, errUnwritable) {
		log.Warn("store: cannot write the default data directory; keeping the store in memory, so it lives only as long as the agent: set framework.WithDataDir or $"+EnvDataDir+" to a writable directory", "dir", dir, "err", err)
		return memstore.New(), nil
	}
	return s, err
}

var errUnwritable = errors.New("not writable")

func openDir(dir, from string, sync bool, log *slog.Logger) (store.Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: data directory %s (%s): %w: %w; make it writable or choose another", dir, from, errUnwritable, err)
	}
	path := filepath.Join(dir, FileName)
	s, err := boltstore.Open(path, boltstore.Options{Sync: sync})
	switch {
	case errors.Is(err, boltstore.ErrLocked):
		return nil, fmt.Errorf("store: data directory %s (%s) is in use by another brood cluster: stop that one, or give this one another data directory (framework.WithDataDir, $%s): %w", dir, from, EnvDataDir, err)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return nil, fmt.Errorf("store: data directory %s (%s): %w: %w; make it writable or choose another", dir, from, errUnwritable, err)
	case err != nil:
		return nil, fmt.Errorf("store: data directory %s (%s): %w", dir, from, err)
	}
	log.Info("store: agent database", "path", path, "from", from, "sync", sync)
	return s, nil
}

// defaultDir is $XDG_STATE_HOME/brood/APP or ~/.local/state/brood/APP: the
// XDG place for data that should persist but is not worth backing up.
func defaultDir(getenv func(string) string, app string) (string, error) {
	base := getenv("XDG_STATE_HOME")
	if base == "" || !filepath.IsAbs(base) {
		home := getenv("HOME")
		if home == "" {
			var err error
			if home, err = os.UserHomeDir(); err != nil {
				return "", err
			}
		}
		base = filepath.Join(home, ".local", "state")
	}
	name := strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 {
			return '_'
		}
		return r
	}, app)
	if name == "" || name == "." || name == ".." {
		name = "brood"
	}
	return filepath.Join(base, "brood", name), nil
}

func redact(raw string) string {
	if i := strings.Index(raw, "@"); i >= 0 {
		if j := strings.Index(raw, "://"); j >= 0 && j < i {
			return raw[:j+3] + "xxxxx" + raw[i:]
		}
	}
	return raw
}

// Shared returns s for handing out to application code: its Close does
// nothing, because the framework owns the store and closes it after the
// OnStop hooks.
func Shared(s store.Store) store.Store { return shared{s} }

type shared struct{ store.Store }

func (shared) Close() error { return nil }

// None returns a store whose every operation fails with
// store.ErrUnavailable, giving why: what agent.New hands out without a
// store.
func None(why string) store.Store { return none{why} }

type none struct{ why string }

func (n none) err() error { return fmt.Errorf("%w: %s", store.ErrUnavailable, n.why) }
func (n none) Get(context.Context, string) ([]byte, bool, error) {
	return nil, false, n.err()
}
func (n none) Set(context.Context, string, []byte, time.Duration) error { return n.err() }
func (n none) Delete(context.Context, string) error                     { return n.err() }
func (n none) Incr(context.Context, string, int64, time.Duration) (int64, error) {
	return 0, n.err()
}
func (n none) SetIfAbsent(context.Context, string, []byte, time.Duration) (bool, error) {
	return false, n.err()
}
func (n none) Lookup(context.Context, string) (store.Item, bool, error) {
	return store.Item{}, false, n.err()
}
func (n none) CompareAndSet(context.Context, string, []byte, uint64, time.Duration) (bool, error) {
	return false, n.err()
}
func (n none) List(context.Context, string, string, int) ([]store.Item, error) {
	return nil, n.err()
}
func (none) Close() error { return nil }
