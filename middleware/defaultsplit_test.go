package middleware

import (
	"net/http"
	"testing"
)

func TestDefaultSplitSeparatesAccessAndErrors(t *testing.T) {
	access, accessSink := newTestLogger()
	errs, errSink := newTestLogger()
	var h http.Handler = http.HandlerFunc(panicBeforeWrite)
	chain := DefaultSplit(access, errs, func() bool { return true })
	for i := len(chain) - 1; i >= 0; i-- {
		h = chain[i](h)
	}
	srv := newServer(t, h)
	resp, _, err := do(t, mustRequest(t, "GET", srv.URL+"/boom", nil))
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if resp.StatusCode != 500 {
		t.Fatalf("got status %d, want 500", resp.StatusCode)
	}
	if got := len(accessSink.recordsWithMsg(t, "request")); got != 1 {
		t.Errorf("access logger got %d request records, want 1: %v", got, accessSink.records(t))
	}
	if got := len(accessSink.recordsWithMsg(t, "panic serving request")); got != 0 {
		t.Errorf("access logger got %d panic records, want 0", got)
	}
	if got := len(errSink.recordsWithMsg(t, "panic serving request")); got != 1 {
		t.Errorf("error logger got %d panic records, want 1: %v", got, errSink.records(t))
	}
	if got := len(errSink.recordsWithMsg(t, "request")); got != 0 {
		t.Errorf("error logger got %d access records, want 0", got)
	}
}
