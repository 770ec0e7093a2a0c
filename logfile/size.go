package logfile

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sizeUnits maps each accepted suffix (upper-cased) to its multiplier. KB, MB
// and GB are decimal, as disks and most people count; the -iB forms are
// binary.
var sizeUnits = map[string]int64{
	"":    1,
	"B":   1,
	"KB":  1000,
	"MB":  1000 * 1000,
	"GB":  1000 * 1000 * 1000,
	"KIB": 1 << 10,
	"MIB": 1 << 20,
	"GIB": 1 << 30,
}

const sizeForms = "a positive number with an optional unit B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024), e.g. 100MB or 1.5GiB"

// ParseSize parses a size such as "100MB", "512KiB", "1.5GB" or "4096" into
// bytes. Units are case-insensitive and may follow a space. The result must be
// a whole number of bytes, at least 1.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool {
		return (r < '0' || r > '9') && r != '.'
	})
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.ToUpper(strings.TrimSpace(t[i:]))
	mult, ok := sizeUnits[unit]
	if !ok || num == "" {
		return 0, fmt.Errorf("parse size %q: want %s", s, sizeForms)
	}
	if !strings.Contains(num, ".") {
		// Integers take their own path so large byte counts stay exact.
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n > math.MaxInt64/mult {
			return 0, fmt.Errorf("parse size %q: want %s", s, sizeForms)
		}
		if n < 1 {
			return 0, fmt.Errorf("parse size %q: zero, want %s", s, sizeForms)
		}
		return n * mult, nil
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("parse size %q: want %s", s, sizeForms)
	}
	n := v * float64(mult)
	switch {
	case n >= math.MaxInt64:
		return 0, fmt.Errorf("parse size %q: too large, want %s", s, sizeForms)
	case n < 1:
		return 0, fmt.Errorf("parse size %q: less than one byte, want %s", s, sizeForms)
	case n != math.Trunc(n):
		return 0, fmt.Errorf("parse size %q: not a whole number of bytes, want %s", s, sizeForms)
	}
	return int64(n), nil
}
