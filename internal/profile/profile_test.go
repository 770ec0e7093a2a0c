package profile

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"testing"
	"time"
)

func TestCollect(t *testing.T) {
	for _, kind := range Kinds {
		t.Run(kind, func(t *testing.T) {
			data, err := Collect(context.Background(), kind, 50*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if kind == "trace" {
				if !bytes.HasPrefix(data, []byte("go 1.")) {
					t.Errorf("trace starts %q, want a Go trace header", data[:min(len(data), 16)])
				}
				return
			}
			// pprof's format: a gzipped protocol buffer.
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("not gzip: %v", err)
			}
			if _, err := io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCollectRefuses(t *testing.T) {
	if _, err := Collect(context.Background(), "cpus", 0); err == nil {
		t.Error("an unknown profile was taken; want an error")
	}
	// One CPU profile at a time.
	done := make(chan error, 1)
	go func() {
		_, err := Collect(context.Background(), "cpu", 500*time.Millisecond)
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if _, err := Collect(context.Background(), "cpu", 10*time.Millisecond); err == nil {
		t.Error("a second CPU profile at once was taken; want an error")
	}
	if err := <-done; err != nil {
		t.Errorf("the first: %v", err)
	}
}

func TestCollectCutShort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := Collect(ctx, "cpu", time.Minute); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s; want it cut short by the context", d)
	}
}
