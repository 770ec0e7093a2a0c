package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/broodhq/brood/internal/control"
	"github.com/broodhq/brood/schedule"
)

// snapshot is the README's screen, a reload 3/4 with worker 2 just
// SIGKILLed, as a tracker that saw it over three looks.
func snapshot(t *testing.T) *tracker {
	t.Helper()
	at := time.Date(2025, 1, 2, 10, 0, 0, 0, time.UTC)
	jobs, err := json.Marshal([]schedule.JobStatus{
		{Name: "visits-report", Schedule: "every 1m0s", LastStart: at, LastDuration: time.Millisecond, NextRun: at.Add(44 * time.Second)},
		{Name: "purge", Schedule: "*/5 * * * *", LastStart: at, LastDuration: 1500 * time.Millisecond, NextRun: at.Add(3 * time.Minute),
			LastError: "dial tcp 127.0.0.1:6379: connect: connection refused"},
	})
	if err != nil {
		t.Fatal(err)
	}
	master := control.Process{Role: "master", PID: 23039, State: "reloading", Generation: 2, RSS: 15_800_000}
	agent := control.Process{Role: "agent", PID: 23048, State: "ready", Generation: 1, RSS: 14_900_000}
	worker := func(slot, pid int, state string, gen int, reqs uint64, restarts int, reason string) control.Process {
		return control.Process{Role: "worker", Slot: slot, PID: pid, State: state, Generation: gen, Requests: reqs,
			InFlight: 1, RSS: 15_000_000, Restarts: restarts, LastReason: reason, Started: at}
	}
	// A minute and more of steady traffic, so the sparklines are full,
	// then the reload.
	var looks [][]control.Process
	for i := range uint64(sparkLen + 10) {
		looks = append(looks, []control.Process{master, agent, worker(1, 23054, "ready", 1, 20*i, 0, ""),
			worker(2, 23055, "ready", 1, 20*i+i%7, 0, ""), worker(3, 23061, "ready", 1, 25*i, 0, "")})
	}
	looks = append(looks,
		[]control.Process{master, agent, worker(1, 23213, "ready", 2, 10, 0, "reload"), worker(2, 23229, "ready", 2, 10, 0, "reload"),
			worker(3, 23061, "ready", 1, 2000, 0, "")},
		[]control.Process{master, agent, worker(1, 23213, "ready", 2, 34, 0, "reload"), worker(2, 23275, "ready", 2, 21, 1, "signal: killed"),
			worker(3, 23061, "draining", 1, 2022, 0, "reload"), worker(3, 23247, "starting", 2, 0, 0, "reload")})
	tr := newTracker()
	for i, ps := range looks {
		now := at.Add(time.Duration(i-len(looks)+1) * time.Second)
		tr.observe(&control.Status{App: "hello", Addr: "127.0.0.1:8080", Started: at.Add(-4 * time.Second), Generation: 2,
			Workers: 3, Ready: 3, Operation: "reload 3/4", Processes: ps, Jobs: jobs}, now)
	}
	return tr
}

var escapes = regexp.MustCompile("\x1b\\[[0-9;]*m")

// view is what the full-screen view shows at width, without its styles.
func view(t *testing.T, tr *tracker, width int) []string {
	t.Helper()
	m := &topModel{t: tr, interval: time.Second}
	m.Update(tea.WindowSizeMsg{Width: width, Height: 50})
	return strings.Split(strings.TrimSuffix(escapes.ReplaceAllString(m.View(), ""), "\n"), "\n")
}

// shown is one table of a screen: its headers, where each starts, and its
// rows' values under them.
type shown struct {
	heads  []string
	starts []int // in runes, one cell each in these tables
	rows   [][]string
}

var headRE = regexp.MustCompile(`\S+( \S+)*`) // a header: words one space apart

// findTable reads the table whose header line starts with first: headers
// are two or more spaces apart, and a row's value under a header is what
// lies between the header's start and the next one's.
func findTable(t *testing.T, lines []string, first string) shown {
	t.Helper()
	var s shown
	i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, first+" ") })
	if i < 0 {
		t.Fatalf("no table starting with %s in:\n%s", first, strings.Join(lines, "\n"))
	}
	for _, loc := range headRE.FindAllStringIndex(lines[i], -1) {
		s.heads = append(s.heads, lines[i][loc[0]:loc[1]])
		s.starts = append(s.starts, utf8.RuneCountInString(lines[i][:loc[0]]))
	}
	for _, l := range lines[i+1:] {
		if l == "" {
			break
		}
		r := []rune(l)
		var values []string
		for k, start := range s.starts {
			end := len(r)
			if k+1 < len(s.starts) {
				end = min(s.starts[k+1], len(r))
			}
			v := ""
			if start < len(r) {
				v = string(r[start:end])
				if start > 0 && r[start-1] != ' ' {
					t.Errorf("under %s, a value starts before its header (column %d):\n%s\n%s", s.heads[k], start, lines[i], l)
				}
			}
			if strings.HasPrefix(v, " ") && strings.TrimSpace(v) != "" {
				t.Errorf("under %s, a value starts after its header (column %d):\n%s\n%s", s.heads[k], start, lines[i], l)
			}
			values = append(values, strings.TrimSpace(v))
		}
		s.rows = append(s.rows, values)
	}
	return s
}

// TestTopViewWidths renders one snapshot at several terminal widths: every
// line fits, the key columns stay, columns are dropped whole and never cut,
// and each header stands where its values start.
func TestTopViewWidths(t *testing.T) {
	tr := snapshot(t)
	full := tr.screen(0, plain) // what a pipe gets: everything
	fullProcs, fullJobs := findTable(t, full, "ROLE"), findTable(t, full, "JOB")
	for _, c := range []struct {
		width int
		keys  []string // process columns that must be shown
		jobs  []string // job columns that must be shown
		heads []string // parts of the header line that must be shown
	}{
		{200, header, []string{"JOB", "SCHEDULE", "NEXT RUN", "LAST DURATION", "LAST ERROR"},
			[]string{"brood top", "hello", "127.0.0.1:8080", "generation 2", "workers 3/3 ready", "up 4s", "reload 3/4"}},
		{120, header, []string{"JOB", "SCHEDULE", "NEXT RUN", "LAST DURATION", "LAST ERROR"},
			[]string{"brood top", "hello", "127.0.0.1:8080", "generation 2", "workers 3/3 ready", "up 4s", "reload 3/4"}},
		{80, []string{"ROLE", "SLOT", "PID", "STATE", "REQ/S", "RSS", "RESTARTS"}, []string{"JOB", "NEXT RUN"},
			[]string{"hello", "workers 3/3 ready", "reload 3/4"}},
		{60, []string{"ROLE", "SLOT", "PID", "STATE", "REQ/S", "RSS"}, []string{"JOB", "NEXT RUN"},
			[]string{"workers 3/3 ready", "reload 3/4"}},
	} {
		t.Run(fmt.Sprint(c.width), func(t *testing.T) {
			lines := view(t, tr, c.width)
			screen := strings.Join(lines, "\n")
			// The layout fits by itself: View's cut at the width is only
			// a safety net for terminals too narrow for the key columns.
			for _, set := range [][]string{lines, tr.screen(c.width, plain)} {
				for _, l := range set {
					if n := max(utf8.RuneCountInString(l), lipgloss.Width(l)); n > c.width {
						t.Errorf("a line of %d cells at width %d:\n%s", n, c.width, l)
					}
				}
			}
			for _, h := range c.heads {
				if !strings.Contains(lines[0], h) {
					t.Errorf("the header line lacks %q: %q", h, lines[0])
				}
			}
			for _, tc := range []struct {
				first string
				full  shown
				keys  []string
			}{{"ROLE", fullProcs, c.keys}, {"JOB", fullJobs, c.jobs}} {
				got := findTable(t, lines, tc.first)
				for _, k := range tc.keys {
					if !slices.Contains(got.heads, k) {
						t.Errorf("at width %d, no column %s; got %q:\n%s", c.width, k, got.heads, screen)
					}
				}
				if len(got.rows) != len(tc.full.rows) {
					t.Fatalf("got %d rows under %s, want %d:\n%s", len(got.rows), tc.first, len(tc.full.rows), screen)
				}
				// Each column shown is one of the full table's, whole,
				// in its order, with the same values.
				last := -1
				for k, h := range got.heads {
					j := slices.Index(tc.full.heads, h)
					if j < 0 {
						t.Errorf("at width %d, a header %q that is none of %q:\n%s", c.width, h, tc.full.heads, screen)
						continue
					}
					if j <= last {
						t.Errorf("at width %d, %s out of its place: %q", c.width, h, got.heads)
					}
					last = j
					for r := range got.rows {
						if g, w := got.rows[r][k], tc.full.rows[r][j]; h == sparkHead {
							// As wide as the room, so not the full table's.
							if (g == "") != (w == "") || strings.Trim(g, string(bars)) != "" {
								t.Errorf("at width %d, row %d under %s: got %q, want a sparkline like %q", c.width, r+1, h, g, w)
							}
						} else if g != w {
							t.Errorf("at width %d, row %d under %s: got %q, want %q:\n%s", c.width, r+1, h, g, w, screen)
						}
					}
				}
			}
			// The sparklines, when shown, cover the same looks: the
			// total's and the slots' are as wide; none is cut.
			widths := map[int]bool{}
			for _, l := range lines {
				if i := strings.IndexAny(l, string(bars)); i >= 0 {
					spark := strings.TrimRight(l[i:], " ")
					if strings.Trim(spark, string(bars)) != "" {
						t.Errorf("at width %d, a sparkline with more in it: %q", c.width, spark)
					}
					widths[utf8.RuneCountInString(spark)] = true
				}
			}
			if len(widths) != 1 || widths[0] {
				t.Errorf("at width %d, sparklines of widths %v, want one width:\n%s", c.width, widths, screen)
			}
		})
	}
}

// The view follows the terminal's width: bubbletea reads it at start and
// on every SIGWINCH, and tells the model.
func TestTopFollowsResize(t *testing.T) {
	m := &topModel{t: snapshot(t), interval: time.Second}
	for _, c := range []struct {
		width     int
		shown, no []string // process columns
	}{
		{200, header, nil},
		{60, []string{"ROLE", "PID", "RSS"}, []string{"INFL", "QUEUE", "LAST MINUTE"}},
		{200, header, nil},
	} {
		m.Update(tea.WindowSizeMsg{Width: c.width, Height: 50})
		lines := strings.Split(escapes.ReplaceAllString(m.View(), ""), "\n")
		for _, l := range lines {
			if n := lipgloss.Width(l); n > c.width {
				t.Errorf("after a resize to %d, a line of %d cells: %s", c.width, n, l)
			}
		}
		heads := findTable(t, lines, "ROLE").heads
		for _, h := range c.shown {
			if !slices.Contains(heads, h) {
				t.Errorf("after a resize to %d, no column %s: %q", c.width, h, heads)
			}
		}
		for _, h := range c.no {
			if slices.Contains(heads, h) {
				t.Errorf("after a resize to %d, a column %s: %q", c.width, h, heads)
			}
		}
	}
}

// Columns are as wide as their values in cells, as the terminal shows
// them: a wide character takes two.
func TestTableCells(t *testing.T) {
	got := table([][]string{{"APP", "PID"}, {"日本", "1"}, {"↓ x", "2"}})
	want := []string{"APP   PID", "日本  1", "↓ x   2"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// On a terminal too short for the view, the top of it stays (the headline
// and the table's header, which bubbletea would drop first), and the last
// line says how much is left out; a tall one shows it all.
func TestTopFitsTheTerminalsHeight(t *testing.T) {
	tr := snapshot(t)
	for _, height := range []int{6, 9, 12, 50} {
		m := &topModel{t: tr, interval: time.Second}
		m.Update(tea.WindowSizeMsg{Width: 120, Height: height})
		out := escapes.ReplaceAllString(m.View(), "")
		// What bubbletea's renderer counts: the closing newline's empty
		// line too.
		lines := strings.Split(out, "\n")
		if len(lines) > height {
			t.Errorf("height %d: %d lines:\n%s", height, len(lines), out)
			continue
		}
		if !strings.Contains(lines[0], "hello") {
			t.Errorf("height %d: the first line is %q; want the headline", height, lines[0])
		}
		if !strings.HasPrefix(lines[3], "ROLE") {
			t.Errorf("height %d: line 4 is %q; want the table's header", height, lines[3])
		}
		last := lines[len(lines)-2]
		if cut := strings.Contains(last, "more lines"); cut != (height < 20) {
			t.Errorf("height %d: the last line is %q", height, last)
		}
		if height == 50 && !strings.Contains(out, "q quits") {
			t.Errorf("height 50: no help line:\n%s", out)
		}
	}
}
