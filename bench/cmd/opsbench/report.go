package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

func report(out io.Writer, o options, results []*result) {
	fmt.Fprintf(out, "opsbench  %s, %s, %d CPUs, commit %s\n", time.Now().UTC().Format(time.RFC3339), runtime.Version(), runtime.NumCPU(), commit())
	path := "/whoami"
	if o.sleep > 0 {
		path += "?sleep=" + o.sleep.String()
	}
	fmt.Fprintf(out, "load      %d keep-alive + %d fresh-connection clients, GET %s back to back on 127.0.0.1, no retries, %s per request\n",
		o.keepAlive, o.fresh, path, o.timeout)
	if o.shared {
		fmt.Fprintf(out, "note      run without the benchmark lock: another benchmark may have shared the CPUs\n")
	}
	fmt.Fprintf(out, "servers   2 workers at start; %s of load before the first and after the last operation, %s after each\n\n", o.settle, o.gap)

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tserver\tclients\tserved\tfailed\trefused\treset\ttimeout\tclosed\tnon-2xx\tother\t")
	for _, r := range results {
		for i, t := range []*tally{&r.KeepAlive, &r.Fresh} {
			name, server, clients := r.Scenario, r.Server, "keep-alive"
			if r.Pausing {
				clients = "pausing"
			}
			if i == 1 {
				if r.Pausing {
					continue
				}
				name, server, clients = "", "", "fresh"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t", name, server, clients, t.OK, t.failed())
			for _, n := range t.Errs {
				fmt.Fprintf(tw, "%d\t", n)
			}
			fmt.Fprintln(tw)
		}
	}
	tw.Flush()

	for _, r := range results {
		fmt.Fprintf(out, "\n%s, %s: %.1fs of load", r.Scenario, r.Server, r.Load.End.Sub(r.Load.Start).Seconds())
		if len(r.Ops) > 0 {
			var ds []time.Duration
			for _, op := range r.Ops {
				ds = append(ds, op.Done.Sub(op.Start))
			}
			slices.Sort(ds)
			fmt.Fprintf(out, "; %d operations, signal to completion line %s (min) %s (median) %s (max)",
				len(ds), ms(ds[0]), ms(ds[len(ds)/2]), ms(ds[len(ds)-1]))
		}
		fmt.Fprintln(out)
		for _, n := range r.Notes {
			fmt.Fprintf(out, "  %s\n", n)
		}
		failures(out, o, r)
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond)) }

// failures lists the first o.show failures of r with what the server had
// logged just before each, and counts them all by shape.
func failures(out io.Writer, o options, r *result) {
	fs := append(append([]failure(nil), r.KeepAlive.Failures...), r.Fresh.Failures...)
	if len(fs) == 0 {
		return
	}
	slices.SortFunc(fs, func(a, b failure) int { return a.At.Compare(b.At) })
	shapes := map[string]int{}
	for _, f := range fs {
		shapes[shape(f)]++
	}
	var keys []string
	for k := range shapes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fmt.Fprintf(out, "  failures by shape:\n")
	for _, k := range keys {
		fmt.Fprintf(out, "    %5d  %s\n", shapes[k], k)
	}
	n := min(len(fs), o.show)
	fmt.Fprintf(out, "  first %d failures (time from the start of the load; the last server event before; the last event about the pid that served the connection):\n", n)
	for _, f := range fs[:n] {
		fmt.Fprintf(out, "    +%.3fs %s  %s", f.At.Sub(r.Load.Start).Seconds(), shape(f), f.Err)
		if f.Local != "" {
			fmt.Fprintf(out, " (from %s)", f.Local)
		}
		if ev, ok := lastBefore(r.Events, f.At, 0); ok {
			fmt.Fprintf(out, "\n        %s before: %s", ms(f.At.Sub(ev.At)), describe(ev))
		}
		if f.PID != 0 {
			if ev, ok := lastBefore(r.Events, f.At, f.PID); ok {
				fmt.Fprintf(out, "\n        pid %d: %s before: %s", f.PID, ms(f.At.Sub(ev.At)), describe(ev))
			}
		}
		fmt.Fprintln(out)
	}
}

func shape(f failure) string {
	var b strings.Builder
	if f.Fresh {
		b.WriteString("fresh ")
	} else {
		b.WriteString("keep-alive ")
	}
	b.WriteString(kindNames[f.Kind] + " at " + f.Stage)
	if f.Stage != "connect" {
		if f.Reused {
			b.WriteString(", reused connection")
		} else {
			b.WriteString(", new connection")
		}
		if f.Partial {
			b.WriteString(", part of the response read")
		} else {
			b.WriteString(", nothing read")
		}
	}
	return b.String()
}

// lastBefore finds the last event before t, only those naming pid if pid
// is not 0.
func lastBefore(evs []event, t time.Time, pid int) (event, bool) {
	for i := len(evs) - 1; i >= 0; i-- {
		ev := evs[i]
		if ev.At.After(t) || (pid != 0 && ev.ChildPID != pid) {
			continue
		}
		return ev, true
	}
	return event{}, false
}

func describe(ev event) string {
	s := fmt.Sprintf("%q", ev.Msg)
	if ev.Child != "" {
		s += " " + ev.Child
	}
	if ev.ChildPID != 0 {
		s += fmt.Sprintf(" pid %d", ev.ChildPID)
	}
	return s
}

// commit names the tree measured: $COMMIT when set (a snapshot that is
// not a git checkout, as in run.sh), else git's HEAD.
func commit() string {
	if c := os.Getenv("COMMIT"); c != "" {
		return c
	}
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if exec.Command("git", "diff", "--quiet", "HEAD", "--", "..").Run() != nil {
		c += " (with uncommitted changes)"
	}
	return c
}
