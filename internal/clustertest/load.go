package clustertest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Load is a bounded request loop against a cluster, counting what failed.
// Requests are POSTs: net/http's client silently retries a GET that failed
// on a reused connection, which would hide exactly the failures a
// zero-downtime test is looking for.
type Load struct {
	OK, Failed atomic.Int64

	mu     sync.Mutex
	errors map[string]int
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

// StartLoad runs clients concurrent loops POSTing to url until Stop or
// until limit passes. keepAlive chooses between reusing connections and a
// fresh connection per request.
func StartLoad(url string, clients int, keepAlive bool, limit time.Duration) *Load {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	l := &Load{errors: map[string]int{}, stop: cancel}
	for range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			tr := &http.Transport{DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for ctx.Err() == nil {
				l.one(ctx, cl, url)
			}
		}()
	}
	return l
}

func (l *Load) one(ctx context.Context, cl *http.Client, url string) {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("x"))
	resp, err := cl.Do(req)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
	}
	if err == nil {
		l.OK.Add(1)
		return
	}
	if ctx.Err() != nil {
		return // stopped mid-request: not the server's failure
	}
	l.Failed.Add(1)
	l.mu.Lock()
	l.errors[err.Error()]++
	l.mu.Unlock()
}

// Stop ends the loops and waits for them.
func (l *Load) Stop() {
	l.stop()
	l.wg.Wait()
}

// Errors summarises the failures by message.
func (l *Load) Errors() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for msg, n := range l.errors {
		fmt.Fprintf(&b, "%d× %s\n", n, msg)
	}
	return b.String()
}
