package target

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// The packages the benchmarks run, by the name their binary gets.
var Packages = map[string]string{
	"hello":     "github.com/broodhq/brood/examples/hello",
	"hellobare": "github.com/broodhq/brood/bench/cmd/hellobare",
	"plain":     "github.com/broodhq/brood/bench/cmd/plain",
	"storeapp":  "github.com/broodhq/brood/bench/cmd/storeapp",
	"mixedapp":  "github.com/broodhq/brood/bench/cmd/mixedapp",

	"metricsapp":   "github.com/broodhq/brood/bench/cmd/metricsapp",
	"metricsplain": "github.com/broodhq/brood/bench/cmd/metricsplain",
}

// Build compiles the named binaries (keys of Packages) into dir with the go
// command, which must run inside the bench module, and returns their paths
// by name. The benchmarks exec built binaries, never `go run`, so the
// compiler is not part of what they time.
func Build(ctx context.Context, dir string, names ...string) (map[string]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	args := []string{"build", "-o", abs + string(filepath.Separator)}
	paths := make(map[string]string, len(names))
	for _, n := range names {
		if _, dup := paths[n]; dup {
			continue
		}
		pkg, ok := Packages[n]
		if !ok {
			return nil, fmt.Errorf("build: no package for %q", n)
		}
		args = append(args, pkg)
		paths[n] = filepath.Join(abs, n)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("build %v (run from the bench/ directory): %w", names, err)
	}
	return paths, nil
}

// HelloAndPlain builds examples/hello and the plain net/http server into
// dir and returns them as the pair cmd/startup and cmd/rss compare: brood
// with workers workers (warnings only, so logging costs nothing), and plain.
func HelloAndPlain(ctx context.Context, dir string, workers int) ([]Spec, error) {
	paths, err := Build(ctx, dir, "hello", "plain")
	if err != nil {
		return nil, err
	}
	return []Spec{
		{Name: "brood", Path: paths["hello"], Env: []string{fmt.Sprintf("BROOD_WORKERS=%d", workers), "BROOD_LOG_LEVEL=warn"}},
		{Name: "plain", Path: paths["plain"]},
	}, nil
}
