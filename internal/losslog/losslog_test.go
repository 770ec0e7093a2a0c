package losslog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

type fakeTimer struct{ stopped bool }

func (t *fakeTimer) Stop() bool { t.stopped = true; return true }

// clock hands the test the function each interval would run at its end.
type clock struct{ due []func() }

func (c *clock) afterFunc(_ time.Duration, f func()) Timer {
	c.due = append(c.due, f)
	return &fakeTimer{}
}

// end runs the running interval's end.
func (c *clock) end(t *testing.T) {
	t.Helper()
	if len(c.due) == 0 {
		t.Fatal("no interval is running")
	}
	f := c.due[0]
	c.due = c.due[1:]
	f()
}

func lines(t *testing.T, buf *bytes.Buffer) []string {
	t.Helper()
	var out []string
	for _, s := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if s == "" {
			continue
		}
		var r struct {
			Count  int64
			Reason string
			Action string
		}
		if err := json.Unmarshal([]byte(s), &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%d %s/%s", r.Count, r.Reason, r.Action))
	}
	buf.Reset()
	return out
}

func want(t *testing.T, got []string, w ...string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(w) {
		t.Errorf("got %q, want %q", got, w)
	}
}

// Losses are reported promptly, counted right and under their own reason:
// 13 losses in one burst are one line for the first, then one with the
// other 12 at the interval's end, and a later loss for another reason is
// not folded into them.
func TestLossesReportedPromptlyWithTheirOwnReason(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	c := &clock{}
	l := &Log{AfterFunc: c.afterFunc}

	for range 13 {
		l.Add(log, "worker 7 is gone", "tick")
	}
	want(t, lines(t, &buf), "1 worker 7 is gone/tick")
	l.Add(log, "no process 42 in the cluster", "ping")
	c.end(t)
	want(t, lines(t, &buf), "1 no process 42 in the cluster/ping", "12 worker 7 is gone/tick")

	// The interval that followed saw nothing: the next loss is immediate.
	c.end(t)
	want(t, lines(t, &buf))
	l.Add(log, "inbox full", "tick")
	want(t, lines(t, &buf), "1 inbox full/tick")

	l.Add(log, "inbox full", "tick")
	l.Flush()
	want(t, lines(t, &buf), "1 inbox full/tick")
}

func TestLossReasonsAreBounded(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	c := &clock{}
	l := &Log{AfterFunc: c.afterFunc}
	l.Add(log, "first", "a")
	for i := range maxReasons + 10 {
		l.Add(log, fmt.Sprint("reason ", i), "a")
	}
	lines(t, &buf)
	c.end(t)
	got := lines(t, &buf)
	if len(got) != maxReasons+1 || got[len(got)-1] != "10 other reasons/" {
		t.Errorf("got %d lines ending %q, want %d ending \"10 other reasons/\"", len(got), got[len(got)-1], maxReasons+1)
	}
}
