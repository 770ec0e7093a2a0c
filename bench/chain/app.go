package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"

	"github.com/go-chi/chi/v5"

	"github.com/broodhq/brood/app"
	"github.com/broodhq/brood/framework"
	"github.com/broodhq/brood/middleware"
)

// The clusters this program measures: the same hello router, served by the
// same framework, differing only in the middleware and where the access log
// goes. The runner starts each by re-executing this binary with
// $BROOD_CHAIN_APP set; the master re-executes it again for its children.
const envApp = "BROOD_CHAIN_APP"

// envProfile names a directory where every worker writes a CPU profile of
// its life (chain -profile).
const envProfile = "BROOD_CHAIN_PROFILE"

var apps = map[string][]framework.Option{
	// No middleware: WithMiddleware() with nothing serves the router bare.
	"bare": {framework.WithMiddleware()},
	// The default chain, logging as an application that configures
	// nothing does: JSON to stderr, which the runner sends to a file.
	"default": nil,
	// The default chain with every record formatted as the framework's
	// JSON handler formats it, but written to io.Discard: the chain's CPU
	// cost without a write(2) per request.
	"discard": {framework.WithLogger(slog.New(middleware.NewJSONHandler(io.Discard, nil)))},
	// No middleware, but every response carries one header, as with the
	// default chain's X-Request-Id: what net/http charges for a response
	// header (cloning the header map at WriteHeader and writing it), which
	// any handler setting Content-Type pays too.
	"header": {framework.WithMiddleware(oneHeader)},
}

var headerValue = []string{"0123456789abcdef-1"}

func oneHeader(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()[middleware.RequestIDHeader] = headerValue
		next.ServeHTTP(w, r)
	})
}

func runApp(name string) {
	opts, ok := apps[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "chain: no application %q\n", name)
		os.Exit(2)
	}
	r := chi.NewRouter()
	r.Get("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "Hello, World!")
	})
	if dir := os.Getenv(envProfile); dir != "" {
		opts = append(opts, framework.WithApp(func(a *app.App) error { return profileWorker(a, dir, name) }))
	}
	if err := framework.Run(r, opts...); err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

// profileWorker records a CPU profile from the worker's start to its stop.
func profileWorker(a *app.App, dir, name string) error {
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-worker%d.pprof", name, a.Slot())))
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("profile: %w", err)
	}
	a.OnStop(func(context.Context) error {
		pprof.StopCPUProfile()
		return f.Close()
	})
	return nil
}
