package storeurl

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"sync"

	"github.com/broodhq/brood/store"
)

// Opener opens a store from a URL for the application named app (backends
// namespace keys with it).
type Opener func(ctx context.Context, u *url.URL, app string, log *slog.Logger) (store.Store, error)

var (
	mu      sync.Mutex
	openers = map[string]Opener{}
	pkgs    = map[string]string{} // scheme: the package that provides it, for the error
)

// Register makes scheme open with fn; backends call it from init.
func Register(scheme string, fn Opener) {
	mu.Lock()
	defer mu.Unlock()
	openers[scheme] = fn
}

// known names the package a scheme needs, so that the error for a missing
// import can say which.
func init() {
	pkgs["redis"] = "github.com/broodhq/brood/store/redisstore"
	pkgs["rediss"] = "github.com/broodhq/brood/store/redisstore"
}

// Check reports, without opening anything, the error Open would return
// for a URL it cannot parse or whose scheme no linked backend handles.
func Check(raw, what string) error {
	_, _, err := lookup(raw, what)
	return err
}

// lookup parses raw and finds its backend.
func lookup(raw, what string) (*url.URL, Opener, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return nil, nil, fmt.Errorf("%s=%q: want a URL such as redis://127.0.0.1:6379/0", what, raw)
	}
	mu.Lock()
	fn := openers[u.Scheme]
	var schemes []string
	for s := range openers {
		schemes = append(schemes, s)
	}
	mu.Unlock()
	if fn == nil {
		if pkg, ok := pkgs[u.Scheme]; ok {
			return nil, nil, fmt.Errorf("%s=%q: the %s backend is not linked: add import _ %q to main", what, u.Redacted(), u.Scheme, pkg)
		}
		sort.Strings(schemes)
		return nil, nil, fmt.Errorf("%s=%q: no store backend for %q (linked: %v)", what, u.Redacted(), u.Scheme, schemes)
	}
	return u, fn, nil
}

// Open opens the store raw names. what names where raw came from, for
// errors ("$BROOD_STORE").
func Open(ctx context.Context, raw, what, app string, log *slog.Logger) (store.Store, error) {
	u, fn, err := lookup(raw, what)
	if err != nil {
		return nil, err
	}
	s, err := fn(ctx, u, app, log)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: %w", what, u.Redacted(), err)
	}
	return s, nil
}
