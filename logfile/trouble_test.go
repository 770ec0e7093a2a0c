package logfile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// troubleLog records what a File reports, and a clock the test moves.
type troubleLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
	now time.Time
}

func newTroubleLog() *troubleLog {
	return &troubleLog{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (l *troubleLog) options(fallback *bytes.Buffer) Options {
	o := Options{
		Logger:      slog.New(slog.NewJSONHandler(&l.buf, nil)),
		CheckEvery:  time.Second,
		ReportEvery: time.Minute,
		Now:         func() time.Time { l.mu.Lock(); defer l.mu.Unlock(); return l.now },
	}
	if fallback != nil {
		o.Fallback = fallback
	}
	return o
}

func (l *troubleLog) advance(d time.Duration) { l.mu.Lock(); l.now = l.now.Add(d); l.mu.Unlock() }

// take returns the records reported since the last take.
func (l *troubleLog) take(t *testing.T) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	l.buf.Reset()
	return recs
}

func wantReports(t *testing.T, got []map[string]any, msgs ...string) {
	t.Helper()
	var have []string
	for _, r := range got {
		have = append(have, r["msg"].(string))
	}
	if fmt.Sprint(have) != fmt.Sprint(msgs) {
		t.Fatalf("reported %q, want %q", have, msgs)
	}
}

func writeLines(f *File, prefix string, n int) {
	for i := range n {
		fmt.Fprintf(f, "%s %d\n", prefix, i)
	}
}

// A full disk (/dev/full answers every write with ENOSPC) drops lines:
// the first loss is reported at once, the count every ReportEvery, and the
// end of it with the total; writing resumes by itself.
func TestOpenWithCountsAndReportsDroppedLines(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	if err := os.Symlink("/dev/full", path); err != nil {
		t.Fatal(err)
	}
	l := newTroubleLog()
	f := OpenWith(path, l.options(nil))
	defer f.Close()

	writeLines(f, "lost", 10)
	wantReports(t, l.take(t), "cannot write to the log file; dropping its lines, counted until it works again")
	l.advance(30 * time.Second)
	writeLines(f, "lost", 5)
	wantReports(t, l.take(t))
	l.advance(31 * time.Second)
	fmt.Fprintf(f, "lost a\nlost b\n") // one write, two lines
	recs := l.take(t)
	wantReports(t, recs, "log lines dropped")
	if got := recs[0]["lines"]; got != float64(16) {
		t.Errorf("periodic report counts %v lines, want 16 (14 since the first report, then 2 in one write)", got)
	}

	// The disk has room again (here: the path is a regular file again).
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	l.advance(time.Second)
	fmt.Fprintln(f, "kept")
	recs = l.take(t)
	wantReports(t, recs, "log file was deleted; recreated it", "log file writable again")
	if got := recs[1]["lost_lines"]; got != float64(17) {
		t.Errorf("lost_lines %v, want 17", got)
	}
	if got := readFile(t, path); got != "kept\n" {
		t.Errorf("file holds %q, want the line written after the loss", got)
	}
}

// A path that cannot be opened sends the lines to the fallback, says so
// once, and goes back to the file when it can be opened.
func TestOpenWithFallsBackUntilThePathOpens(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "logs")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil { // a file where the directory should be
		t.Fatal(err)
	}
	path := filepath.Join(blocker, "app.log")
	var fallback bytes.Buffer
	l := newTroubleLog()
	f := OpenWith(path, l.options(&fallback))
	defer f.Close()
	wantReports(t, l.take(t), "cannot open the log file; writing its lines to the fallback instead until it can be opened again")
	writeLines(f, "diverted", 3)
	l.advance(2 * time.Second)
	fmt.Fprintln(f, "still diverted") // checked: still cannot open
	wantReports(t, l.take(t))
	if got := strings.Count(fallback.String(), "diverted"); got != 4 {
		t.Errorf("fallback got %d lines, want 4: %q", got, fallback.String())
	}

	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	l.advance(2 * time.Second)
	fmt.Fprintln(f, "back")
	recs := l.take(t)
	wantReports(t, recs, "log file open again")
	if got := recs[0]["lines_to_stderr"]; got != float64(4) {
		t.Errorf("lines_to_stderr %v, want 4", got)
	}
	if got := readFile(t, path); got != "back\n" {
		t.Errorf("file holds %q, want \"back\\n\"", got)
	}
}

// A deleted directory is recreated at the next check, instead of writing
// on into a file nobody can read.
func TestOpenWithRecreatesADeletedDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	path := filepath.Join(dir, "app.log")
	l := newTroubleLog()
	f := OpenWith(path, l.options(nil))
	defer f.Close()
	wantReports(t, l.take(t))
	fmt.Fprintln(f, "before")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	l.advance(time.Second)
	fmt.Fprintln(f, "after")
	wantReports(t, l.take(t), "log file was deleted; recreated it")
	if got := readFile(t, path); got != "after\n" {
		t.Errorf("recreated file holds %q, want \"after\\n\"", got)
	}
	// Reopen works too, and recreates the directory as well.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := f.Reopen(); err != nil {
		t.Fatalf("reopen after the directory was deleted: %v", err)
	}
}
