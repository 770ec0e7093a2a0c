package logfile

import (
	"testing"
	"time"
	_ "time/tzdata" // zones with DST even where the system lacks tzdata
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestNextMidnight(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	santiago := mustZone(t, "America/Santiago")
	at := func(loc *time.Location, y int, m time.Month, d, h, min int) time.Time {
		return time.Date(y, m, d, h, min, 0, 0, loc)
	}
	for _, tt := range []struct {
		name string
		now  time.Time
		want time.Time
		// wantIn is the wait, which is what a daily scheduler sleeps.
		wantIn time.Duration
	}{
		{"plain day", at(berlin, 2024, 6, 10, 15, 30), at(berlin, 2024, 6, 11, 0, 0), 8*time.Hour + 30*time.Minute},
		{"exactly midnight waits a whole day", at(berlin, 2024, 6, 10, 0, 0), at(berlin, 2024, 6, 11, 0, 0), 24 * time.Hour},
		{"a minute before", at(berlin, 2024, 12, 31, 23, 59), at(berlin, 2025, 1, 1, 0, 0), time.Minute},
		// Clocks go 02:00 -> 03:00 on 31 March 2024: that day has 23 hours.
		{"spring forward day", at(berlin, 2024, 3, 31, 0, 0), at(berlin, 2024, 4, 1, 0, 0), 23 * time.Hour},
		{"evening before spring forward", at(berlin, 2024, 3, 30, 12, 0), at(berlin, 2024, 3, 31, 0, 0), 12 * time.Hour},
		// Clocks go 03:00 -> 02:00 on 27 October 2024: 25 hours.
		{"fall back day", at(berlin, 2024, 10, 27, 0, 0), at(berlin, 2024, 10, 28, 0, 0), 25 * time.Hour},
		{"fall back afternoon", at(berlin, 2024, 10, 27, 12, 0), at(berlin, 2024, 10, 28, 0, 0), 12 * time.Hour},
		// Santiago skips 00:00-01:00 on 8 September 2024: the day starts
		// at 01:00 -03, the instant of the jump.
		{"midnight skipped", at(santiago, 2024, 9, 7, 23, 30), time.Date(2024, 9, 8, 4, 0, 0, 0, time.UTC), 30 * time.Minute},
		{"UTC", time.Date(2024, 2, 28, 10, 0, 0, 0, time.UTC), time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), 14 * time.Hour},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := NextMidnight(tt.now)
			if !got.Equal(tt.want) {
				t.Errorf("NextMidnight(%v) = %v, want %v", tt.now, got, tt.want)
			}
			if in := got.Sub(tt.now); in != tt.wantIn {
				t.Errorf("wait from %v: got %v, want %v", tt.now, in, tt.wantIn)
			}
			if got.Location() != tt.now.Location() {
				t.Errorf("location: got %v, want %v", got.Location(), tt.now.Location())
			}
		})
	}
}

// Every day of several years in zones with DST: the result is always later
// than now, on the next calendar day, and no earlier instant is.
func TestNextMidnightEveryDay(t *testing.T) {
	for _, zone := range []string{"Europe/Berlin", "America/Santiago", "America/Havana", "Australia/Lord_Howe", "Asia/Tehran"} {
		loc := mustZone(t, zone)
		start := time.Date(2015, 1, 1, 13, 0, 0, 0, loc)
		for d := range 365 * 10 {
			now := start.AddDate(0, 0, d)
			got := NextMidnight(now)
			y, m, dd := now.Date()
			wy, wm, wd := time.Date(y, m, dd+1, 12, 0, 0, 0, time.UTC).Date()
			gy, gm, gd := got.Date()
			if !got.After(now) || gy != wy || gm != wm || gd != wd {
				t.Fatalf("%s: NextMidnight(%v) = %v, want the start of %d-%02d-%02d", zone, now, got, wy, wm, wd)
			}
			if prev := got.Add(-time.Second); prev.Day() == gd {
				t.Fatalf("%s: NextMidnight(%v) = %v, but %v is already that day", zone, now, got, prev)
			}
		}
	}
}
