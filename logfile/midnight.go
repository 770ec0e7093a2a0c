package logfile

import "time"

// NextMidnight returns the first instant after now at which the date changes
// in now's location: the start of the next local day. Days across a daylight
// saving change last 23 or 25 hours, so it never adds 24h. Where clocks jump
// over midnight itself (as in America/Santiago), the next day starts at the
// jump, which is what it returns.
func NextMidnight(now time.Time) time.Time {
	y, m, d := now.Date()
	t := time.Date(y, m, d+1, 0, 0, 0, 0, now.Location())
	if t.Day() != time.Date(y, m, d+1, 12, 0, 0, 0, time.UTC).Day() {
		// time.Date normalised a midnight that does not exist to the hour
		// before it, still on the old day; the new day begins where that
		// zone period ends.
		_, end := t.ZoneBounds()
		if !end.IsZero() {
			t = end
		}
	}
	return t
}
