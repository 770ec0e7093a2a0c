//go:build linux

package proc

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadCPUMax(t *testing.T) {
	tests := []struct {
		content string
		want    int
	}{
		{"max 100000\n", 0},
		{"100000 100000\n", 1},
		{"150000 100000\n", 2}, // 1.5 CPUs round up
		{"400000 100000\n", 4},
		{"garbage\n", 0},
		{"50000 0\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.content, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "cpu.max")
			if err := os.WriteFile(p, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if got := readCPUMax(p); got != tt.want {
				t.Errorf("readCPUMax(%q) = %d, want %d", tt.content, got, tt.want)
			}
		})
	}
}

func TestCPUsAndRSS(t *testing.T) {
	if n := CPUs(); n < 1 {
		t.Errorf("CPUs() = %d, want at least 1", n)
	}
	rss, err := RSS(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Errorf("RSS(self) = %d, %v; want a few MiB", rss, err)
	}
	if _, err := RSS(1 << 30); err == nil {
		t.Error("RSS of a pid that does not exist: no error")
	}
}
