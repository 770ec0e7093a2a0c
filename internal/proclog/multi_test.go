package proclog

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestMultiHandlerSendsEachRecordToEveryHandlerThatWantsIt(t *testing.T) {
	var debug, warn bytes.Buffer
	h := multiHandler{
		slog.NewTextHandler(&debug, &slog.HandlerOptions{Level: slog.LevelDebug}),
		slog.NewTextHandler(&warn, &slog.HandlerOptions{Level: slog.LevelWarn}),
	}
	log := slog.New(h).With("role", "worker").WithGroup("g")
	log.Debug("quiet", "k", 1)
	log.Warn("loud", "k", 2)
	if got := strings.Count(debug.String(), "\n"); got != 2 {
		t.Errorf("debug handler got %d records; want 2:\n%s", got, debug.String())
	}
	if got := warn.String(); strings.Contains(got, "quiet") || !strings.Contains(got, "role=worker") || !strings.Contains(got, "g.k=2") {
		t.Errorf("warn handler got %q; want only the warning, with the attributes and group", got)
	}
	if slog.New(multiHandler{slog.NewTextHandler(&warn, &slog.HandlerOptions{Level: slog.LevelWarn})}).Enabled(context.Background(), slog.LevelInfo) {
		t.Error("enabled at info although no handler wants it")
	}
}
