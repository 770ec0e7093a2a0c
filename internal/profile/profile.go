package profile

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strings"
	"time"
)

// Kinds lists the profiles Collect takes.
var Kinds = []string{"cpu", "heap", "allocs", "goroutine", "mutex", "block", "threadcreate", "trace"}

// Defaults and bounds of a profile's duration.
const (
	DefaultDuration = 5 * time.Second
	MaxDuration     = 5 * time.Minute
)

// Timed reports whether kind lasts a duration.
func Timed(kind string) bool {
	return kind == "cpu" || kind == "trace" || kind == "mutex" || kind == "block"
}

// Check reports whether Collect takes kind.
func Check(kind string) error {
	if !slices.Contains(Kinds, kind) {
		return fmt.Errorf("unknown profile %q; want one of %s", kind, strings.Join(Kinds, ", "))
	}
	return nil
}

// Collect takes a profile of kind over d (timed kinds; 0 means
// DefaultDuration), in the format go tool pprof reads (go tool trace for
// a trace). ctx cuts a timed profile short: what was recorded is returned.
func Collect(ctx context.Context, kind string, d time.Duration) ([]byte, error) {
	if err := Check(kind); err != nil {
		return nil, err
	}
	if d <= 0 {
		d = DefaultDuration
	}
	d = min(d, MaxDuration)
	var buf bytes.Buffer
	switch kind {
	case "cpu":
		if err := pprof.StartCPUProfile(&buf); err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err) // one at a time
		}
		wait(ctx, d)
		pprof.StopCPUProfile()
	case "trace":
		if err := trace.Start(&buf); err != nil {
			return nil, fmt.Errorf("trace: %w", err)
		}
		wait(ctx, d)
		trace.Stop()
	case "mutex":
		if runtime.SetMutexProfileFraction(-1) == 0 {
			runtime.SetMutexProfileFraction(1)
			wait(ctx, d)
			defer runtime.SetMutexProfileFraction(0)
		}
		fallthrough
	default:
		if kind == "block" {
			runtime.SetBlockProfileRate(1)
			wait(ctx, d)
			defer runtime.SetBlockProfileRate(0)
		}
		p := pprof.Lookup(kind)
		if p == nil {
			return nil, fmt.Errorf("no %s profile in this Go runtime", kind)
		}
		if kind == "heap" || kind == "allocs" {
			runtime.GC() // up-to-date figures, as net/http/pprof's gc=1
		}
		if err := p.WriteTo(&buf, 0); err != nil {
			return nil, fmt.Errorf("%s profile: %w", kind, err)
		}
	}
	return buf.Bytes(), nil
}

func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
