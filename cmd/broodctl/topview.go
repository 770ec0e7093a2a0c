package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"

	"github.com/broodhq/brood/internal/control"
	"github.com/broodhq/brood/schedule"
)

// What broodctl top remembers between two looks at the master.
const (
	// rateWindow is how far back a worker's requests per second look:
	// heartbeats come about once a second, so one interval alone would
	// swing between 0 and twice the rate.
	rateWindow = 3 * time.Second
	// sparkLen is how many rates a sparkline keeps: a minute at the
	// default interval of one second.
	sparkLen = 60
	// goneFor is how long a process that left the status stays on screen,
	// marked exited, so a reload can be followed slot by slot.
	goneFor = 5 * time.Second
)

type sample struct {
	at       time.Time
	requests uint64
}

// gone is a process that is no longer in the status.
type gone struct {
	p    control.Process
	seen time.Time // when it was first missing
}

// tracker turns successive statuses into rates and history. It is a plain
// value: one goroutine (the view's) owns it.
type tracker struct {
	st      *control.Status
	at      time.Time
	samples map[int][]sample        // by pid, the last rateWindow
	rate    map[int]float64         // by pid
	spark   map[int][]float64       // by worker slot, across its processes
	total   []float64               // the cluster's requests per second
	seen    map[int]control.Process // by pid, in the last status
	gone    map[int]gone            // by pid
}

func newTracker() *tracker {
	return &tracker{
		samples: map[int][]sample{}, rate: map[int]float64{}, spark: map[int][]float64{},
		seen: map[int]control.Process{}, gone: map[int]gone{},
	}
}

// observe takes in a status read at now.
func (t *tracker) observe(st *control.Status, now time.Time) {
	t.st, t.at = st, now
	live := map[int]control.Process{}
	perSlot := map[int]float64{}
	total := 0.0
	for _, p := range st.Processes {
		if p.PID == 0 {
			continue // a slot given up: no process
		}
		live[p.PID] = p
		if p.Role != "worker" {
			continue
		}
		s := append(t.samples[p.PID], sample{now, p.Requests})
		for len(s) > 1 && now.Sub(s[0].at) > rateWindow {
			s = s[1:]
		}
		t.samples[p.PID] = s
		r := 0.0
		if first := s[0]; len(s) > 1 && p.Requests >= first.requests {
			r = float64(p.Requests-first.requests) / now.Sub(first.at).Seconds()
		}
		t.rate[p.PID] = r
		perSlot[p.Slot] += r
		total += r
	}
	for pid, p := range t.seen {
		if _, ok := live[pid]; !ok {
			t.gone[pid] = gone{p: p, seen: now}
		}
	}
	for pid, g := range t.gone {
		if _, back := live[pid]; back || now.Sub(g.seen) > goneFor {
			delete(t.gone, pid)
		}
	}
	for pid := range t.samples {
		if _, ok := live[pid]; !ok {
			if _, ok := t.gone[pid]; !ok {
				delete(t.samples, pid)
				delete(t.rate, pid)
			}
		}
	}
	for slot, r := range perSlot {
		t.spark[slot] = push(t.spark[slot], r)
	}
	for slot := range t.spark {
		if _, ok := perSlot[slot]; !ok {
			t.spark[slot] = push(t.spark[slot], 0)
		}
	}
	t.total = push(t.total, total)
	t.seen = live
}

func push(s []float64, v float64) []float64 {
	s = append(s, v)
	if len(s) > sparkLen {
		s = s[len(s)-sparkLen:]
	}
	return s
}

// row is one line of the process table, still unstyled.
type row struct {
	mark  string    // "", "starting", "draining", "exited"
	cells []string  // under header
	spark []float64 // its slot's requests per second, for those that show them
}

var header = []string{"ROLE", "SLOT", "PID", "STATE", "GEN", "REQ/S", "INFL", "QUEUE", "RSS", "RESTARTS", "LAST REASON"}

// processKeep is the order in which the process table's columns get room
// on a terminal too narrow for all, the key ones first: each in turn that
// still fits, so a wide one left out does not keep a narrower one out; the
// last minute's sparkline gets what is left. They are shown in header's
// order. jobKeep is the same for the agent's jobs.
var (
	processKeep = []string{"ROLE", "SLOT", "PID", "STATE", "REQ/S", "RSS", "RESTARTS", "LAST REASON", "GEN", "INFL", "QUEUE"}
	jobHeader   = []string{"JOB", "SCHEDULE", "NEXT RUN", "LAST DURATION", "LAST ERROR"}
	jobKeep     = []string{"JOB", "NEXT RUN", "LAST ERROR", "SCHEDULE", "LAST DURATION"}
)

const (
	sparkHead  = "LAST MINUTE" // the sparkline's column
	sparkPlain = 20            // its width when the terminal's is unknown
)

// rows is the process table: the live processes, then the gone ones in
// their slot's place.
func (t *tracker) rows() []row {
	type entry struct {
		p    control.Process
		gone bool
	}
	var es []entry
	for _, p := range t.st.Processes {
		es = append(es, entry{p: p})
	}
	for _, g := range t.gone {
		es = append(es, entry{p: g.p, gone: true})
	}
	order := map[string]int{"master": 0, "agent": 1, "worker": 2}
	slices.SortStableFunc(es, func(a, b entry) int {
		if d := order[a.p.Role] - order[b.p.Role]; d != 0 {
			return d
		}
		if a.p.Slot != b.p.Slot {
			return a.p.Slot - b.p.Slot
		}
		if d := a.p.Started.Compare(b.p.Started); d != 0 {
			return d
		}
		return a.p.PID - b.p.PID // the gone come from a map: the same order every time
	})
	var out []row
	for _, e := range es {
		p := e.p
		r := row{}
		state := p.State
		switch {
		case e.gone:
			r.mark, state = "exited", "✗ exited"
		case p.State == "starting":
			r.mark, state = "starting", "↑ starting"
		case p.State == "draining" || p.State == "stopping":
			r.mark, state = "draining", "↓ "+p.State
		}
		slot, rate, infl, queue := "-", "-", "-", "-"
		if p.Role == "worker" {
			slot = strconv.Itoa(p.Slot)
			if !e.gone && p.PID != 0 {
				rate = fmt.Sprintf("%.0f", t.rate[p.PID])
				infl = strconv.FormatInt(p.InFlight, 10)
				queue = strconv.Itoa(p.Queued)
			}
			if !e.gone && (p.State == "ready" || p.State == "draining") {
				r.spark = t.spark[p.Slot]
			}
		}
		pid := "-"
		if p.PID != 0 {
			pid = strconv.Itoa(p.PID)
		}
		gen := "-"
		if p.Generation != 0 {
			gen = strconv.Itoa(p.Generation)
		}
		rss := size(p.RSS)
		if e.gone {
			rss = "-"
		}
		r.cells = []string{p.Role, slot, pid, state, gen, rate, infl, queue, rss, strconv.Itoa(p.Restarts), clip(orDash(p.LastReason), 28)}
		out = append(out, r)
	}
	return out
}

// headline is the parts of the line above the table, and the order in
// which they get room on a narrow terminal (the first always).
func (t *tracker) headline() (parts []string, keep []int) {
	st := t.st
	parts = []string{"brood top", orDash(st.App), orDash(st.Addr), fmt.Sprintf("generation %d", st.Generation),
		fmt.Sprintf("workers %d/%d ready", st.Ready, st.Workers), "up " + uptime(st.Started, t.at)}
	keep = []int{4, 1, 3, 5, 2, 0} // workers, app, generation, uptime, address, title
	if st.Operation != "" {
		parts = append(parts, st.Operation)
		keep = slices.Insert(keep, 1, 6) // right after workers
	}
	return parts, keep
}

// totalLine is the cluster's requests per second, now and over the last
// sparkWidth looks.
func (t *tracker) totalLine(sparkWidth int) string {
	now := 0.0
	if len(t.total) > 0 {
		now = t.total[len(t.total)-1]
	}
	s := fmt.Sprintf("total %.0f req/s", now)
	if sparkWidth > 0 && len(t.total) > 0 {
		s += "  " + sparkline(t.total, sparkWidth)
	}
	return s
}

// jobLines is the agent's job table, or nothing when it has none.
func (t *tracker) jobLines() [][]string {
	var jobs []schedule.JobStatus
	if len(t.st.Jobs) == 0 || json.Unmarshal(t.st.Jobs, &jobs) != nil || len(jobs) == 0 {
		return nil
	}
	out := [][]string{slices.Clone(jobHeader)}
	for _, j := range jobs {
		next := "-"
		if !j.NextRun.IsZero() {
			next = "in " + uptime(t.at, j.NextRun)
		}
		if j.Running {
			next = "running"
		}
		last := "-"
		if !j.LastStart.IsZero() {
			last = j.LastDuration.Round(time.Millisecond).String()
		}
		out = append(out, []string{j.Name, j.Schedule, next, last, clip(orDash(j.LastError), 40)})
	}
	return out
}

var bars = []rune("▁▂▃▄▅▆▇█")

// sparkline draws the last width values of s, scaled to their maximum.
func sparkline(s []float64, width int) string {
	if width <= 0 || len(s) == 0 {
		return ""
	}
	if len(s) > width {
		s = s[len(s)-width:]
	}
	top := slices.Max(s)
	var b strings.Builder
	for _, v := range s {
		i := 0
		if top > 0 {
			i = int(v / top * float64(len(bars)-1))
		}
		b.WriteRune(bars[min(max(i, 0), len(bars)-1)])
	}
	return b.String()
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// table lays rows out in columns two spaces apart; widths are in cells.
func table(rows [][]string) []string {
	w := columnWidths(rows)
	out := make([]string, len(rows))
	for k, r := range rows {
		var b strings.Builder
		for i, c := range r {
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", w[i]-lipgloss.Width(c)+2))
			}
		}
		out[k] = b.String()
	}
	return out
}

func columnWidths(rows [][]string) []int {
	var w []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(w) {
				w = append(w, 0)
			}
			w[i] = max(w[i], lipgloss.Width(c))
		}
	}
	return w
}

// choose says which of the items of a line, gap cells apart and widths
// wide, to show in width cells: the first of keep always, then each of
// keep in turn that still fits. used is the cells they take. A width of 0
// or less is no limit.
func choose(widths []int, gap, width int, keep []int) (show []bool, used int) {
	show = make([]bool, len(widths))
	used = -gap
	for k, i := range keep {
		if k == 0 || width <= 0 || used+gap+widths[i] <= width {
			show[i] = true
			used += gap + widths[i]
		}
	}
	return show, max(used, 0)
}

// fitLine joins the parts that fit in width, sep apart, in their order;
// see choose.
func fitLine(parts []string, sep string, width int, keep []int) string {
	widths := make([]int, len(parts))
	for i, p := range parts {
		widths[i] = lipgloss.Width(p)
	}
	show, _ := choose(widths, lipgloss.Width(sep), width, keep)
	var out []string
	for i, p := range parts {
		if show[i] {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}

// fitColumns keeps the columns of rows (the first is the header) that fit
// in width, dropping the others whole; keep names the columns in the
// order they get room (see choose). used is the cells the table takes.
func fitColumns(rows [][]string, width int, keep []string) (fitted [][]string, used int) {
	order := make([]int, len(keep))
	for k, h := range keep {
		order[k] = slices.Index(rows[0], h)
	}
	show, used := choose(columnWidths(rows), 2, width, order)
	for _, r := range rows {
		var f []string
		for i, c := range r {
			if show[i] {
				f = append(f, c)
			}
		}
		fitted = append(fitted, f)
	}
	return fitted, used
}

// screen is the whole view as lines, styled by style (which gets a
// row's mark, "" for plain rows, "head" for headers, "title" for the
// headline). width is the terminal's, 0 if unknown: then every column
// shows. On a narrower terminal the less useful columns and parts of the
// headline are left out whole (processKeep), and the sparklines get the
// room that is left. Only a terminal too narrow for the first of them
// (ROLE, "workers 3/3 ready") gets a line too long, which bubbletea's
// renderer cuts.
func (t *tracker) screen(width int, style func(kind, s string) string) []string {
	rows := t.rows()
	cells := [][]string{slices.Clone(header)}
	for _, r := range rows {
		cells = append(cells, r.cells)
	}
	cells, used := fitColumns(cells, width, processKeep)
	// The sparklines: as wide as the room left, up to a minute, or none
	// if there is no room for the column's header; the total's then
	// takes what its own line leaves. Both, when shown, are as wide, so
	// they cover the same looks.
	sw, tsw := sparkPlain, sparkPlain
	if width > 0 {
		sw = min(width-used-2, sparkLen)
		if sw < lipgloss.Width(sparkHead) {
			sw = 0
		}
		tsw = sw
		if sw == 0 {
			tsw = min(width-lipgloss.Width(t.totalLine(0))-2, sparkLen)
		}
	}
	if sw > 0 {
		cells[0] = append(cells[0], sparkHead)
		for i, r := range rows {
			cells[i+1] = append(cells[i+1], sparkline(r.spark, sw))
		}
	}
	parts, keep := t.headline()
	lines := []string{style("title", fitLine(parts, "  ", width, keep)), t.totalLine(tsw), ""}
	for i, l := range table(cells) {
		kind := "head"
		if i > 0 {
			kind = rows[i-1].mark
		}
		lines = append(lines, style(kind, l))
	}
	if jobs := t.jobLines(); jobs != nil {
		lines = append(lines, "")
		jobs, _ = fitColumns(jobs, width, jobKeep)
		for i, l := range table(jobs) {
			kind := ""
			if i == 0 {
				kind = "head"
			}
			lines = append(lines, style(kind, l))
		}
	}
	return lines
}

func plain(_, s string) string { return s }
