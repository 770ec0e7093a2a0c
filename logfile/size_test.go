package logfile

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
	}{
		{"1", 1},
		{"4096", 4096},
		{"10B", 10},
		{"1KB", 1000},
		{"100MB", 100_000_000},
		{"2GB", 2_000_000_000},
		{"1KiB", 1024},
		{"512MiB", 512 << 20},
		{"3GiB", 3 << 30},
		{"100mb", 100_000_000},
		{"1kib", 1024},
		{" 100 MB ", 100_000_000},
		{"1.5GB", 1_500_000_000},
		{"0.5KiB", 512},
		{"8000000000GiB", 8000000000 << 30},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("ParseSize(%q) = %d, %v; want %d, nil", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseSizeBad(t *testing.T) {
	for _, in := range []string{
		"", " ", "MB", "abc", "100XB", "100 M", "100K", "-1MB", "1e3",
		"0", "0MB", "0.1B", "1.2.3MB", "1.0001KB", "10 MB extra",
		"9223372036854775808", "9000000000GiB", "1e30", ".",
	} {
		t.Run(in, func(t *testing.T) {
			got, err := ParseSize(in)
			if err == nil {
				t.Fatalf("ParseSize(%q) = %d, want an error", in, got)
			}
			msg := err.Error()
			if !strings.Contains(msg, `"`+in+`"`) || !strings.Contains(msg, "KiB") {
				t.Errorf("error %q should quote the input and list the accepted units", msg)
			}
		})
	}
}
