package worker

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// The tracker counts what the master needs to tell busy from hung, and a
// draining worker's responses close their connection.
func TestTrackerCountsAndClosesWhenDraining(t *testing.T) {
	release := make(chan struct{})
	tr := &tracker{next: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, "ok")
	})}
	srv := httptest.NewUnstartedServer(tr)
	srv.Config.ConnState = tr.connState
	srv.Start()
	defer srv.Close()

	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := http.Get(srv.URL + "/slow"); err == nil {
			resp.Body.Close()
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for tr.inFlight.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the slow request is not counted in flight")
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	<-done
	if got := tr.accepted.Load(); got != 1 {
		t.Errorf("accepted %d connections; want 1", got)
	}
	if got := tr.completed.Load(); got != 1 || tr.inFlight.Load() != 0 || tr.progress.Load() < 2 {
		t.Errorf("completed %d, in flight %d, progress %d; want 1, 0 and at least 2 (a write and a completion)",
			got, tr.inFlight.Load(), tr.progress.Load())
	}

	tr.draining.Store(true)
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !resp.Close { // the client saw Connection: close
		t.Errorf("a draining worker's response keeps the connection open: %v", resp.Header)
	}
}

// A handler running on a hijacked connection leaves the in-flight count
// and is waited for separately.
func TestTrackerCountsHijackedConnectionsApart(t *testing.T) {
	release := make(chan struct{})
	tr := &tracker{next: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		<-release
	})}
	srv := httptest.NewServer(tr)
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	deadline := time.Now().Add(5 * time.Second)
	for tr.hijacked.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the hijacked handler is not counted")
		}
		time.Sleep(time.Millisecond)
	}
	if n := tr.inFlight.Load(); n != 0 {
		t.Errorf("in flight %d with only a hijacked handler running; want 0", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if n := tr.waitHijacked(ctx); n != 1 {
		t.Errorf("waitHijacked returned %d at its deadline; want 1 left", n)
	}
	close(release)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if n := tr.waitHijacked(ctx2); n != 0 {
		t.Errorf("waitHijacked returned %d after the handler ended; want 0", n)
	}
}
