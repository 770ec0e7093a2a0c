package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/broodhq/brood/internal/control"
)

// writeStatus prints st for people: a header line, then one aligned row per
// process. now is a parameter so tests get fixed uptimes.
func writeStatus(w io.Writer, st *control.Status, now time.Time) error {
	op := ""
	if st.Operation != "" {
		op = "  " + st.Operation
	}
	fmt.Fprintf(w, "app %s  addr %s  generation %d  workers %d  up %s%s\n",
		orDash(st.App), orDash(st.Addr), st.Generation, st.Workers, uptime(st.Started, now), op)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tSLOT\tPID\tSTATE\tUPTIME\tRESTARTS\tREQUESTS\tRSS\tGEN\tQUEUED")
	for _, p := range st.Processes {
		slot, requests := "-", "-"
		if p.Role == "worker" {
			slot = strconv.Itoa(p.Slot)
		}
		if p.Role == "worker" || p.Requests > 0 {
			requests = strconv.FormatUint(p.Requests, 10)
		}
		queued := "-"
		if p.Role == "worker" && p.State == "ready" {
			queued = strconv.Itoa(p.Queued)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%s\t%s\t%d\t%s\n",
			orDash(p.Role), slot, p.PID, orDash(p.State), uptime(p.Started, now),
			p.Restarts, requests, size(p.RSS), p.Generation, queued)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if b, ok := balance(st); ok {
		fmt.Fprintln(w, b)
	}
	var jobs []json.RawMessage
	if len(st.Jobs) > 0 && json.Unmarshal(st.Jobs, &jobs) == nil {
		_, err := fmt.Fprintf(w, "%d agent jobs (-json shows them)\n", len(jobs))
		return err
	}
	return nil
}

// balance is how evenly the worker slots share the requests, and the
// connections they accepted: the busiest slot's over the mean, 1.00 being
// perfectly even. A slot's counts are those of its processes still running
// (a replaced worker's go with it). ok is false with fewer than two slots
// or no requests.
func balance(st *control.Status) (line string, ok bool) {
	requests, conns := map[int]uint64{}, map[int]uint64{}
	for _, p := range st.Processes {
		if p.Role == "worker" && p.PID != 0 {
			requests[p.Slot] += p.Requests
			conns[p.Slot] += p.Accepted
		}
	}
	top, total := busiest(requests)
	if len(requests) < 2 || total == 0 {
		return "", false
	}
	line = fmt.Sprintf("balance: busiest slot %.2f× the mean over %d slots (%d requests)", top, len(requests), total)
	if top, total := busiest(conns); total > 0 {
		line += fmt.Sprintf("; connections %.2f× (%d accepted)", top, total)
	}
	return line, true
}

// busiest is the largest count over the mean of counts, and their total.
func busiest(perSlot map[int]uint64) (ratio float64, total uint64) {
	var top uint64
	for _, n := range perSlot {
		total += n
		top = max(top, n)
	}
	if total == 0 {
		return 0, 0
	}
	return float64(top) / (float64(total) / float64(len(perSlot))), total
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// uptime is the time since started in at most two units: 45s, 3m12s,
// 5h07m, 12d3h.
func uptime(started, now time.Time) string {
	if started.IsZero() {
		return "-"
	}
	s := max(int64(now.Sub(started)/time.Second), 0) // a clock that stepped back
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd%dh", s/86400, s%86400/3600)
}

// size is n in binary units with one decimal: 512B, 12.3MiB. 0 means the
// master could not tell.
func size(n int64) string {
	if n <= 0 {
		return "-"
	}
	if n < 1024 {
		return fmt.Sprintf("%dB", n)
	}
	v := float64(n) / 1024
	for _, unit := range []string{"KiB", "MiB", "GiB"} {
		if v < 1023.95 { // so rounding never prints 1024.0KiB
			return fmt.Sprintf("%.1f%s", v, unit)
		}
		v /= 1024
	}
	return fmt.Sprintf("%.1fTiB", v)
}
