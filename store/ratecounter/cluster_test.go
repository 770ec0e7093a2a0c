package ratecounter_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/httprate"

	"github.com/broodhq/brood/app"
	"github.com/broodhq/brood/framework"
	ct "github.com/broodhq/brood/internal/clustertest"
	"github.com/broodhq/brood/store/ratecounter"
)

const limit = 30

func TestMain(m *testing.M) {
	ct.Main(m, map[string]func() error{"limits": runLimits})
}

// runLimits serves /httprate behind httprate with the store's counter and
// /atomic behind the atomic Limiter, both at limit per hour for everyone.
func runLimits() error {
	r := chi.NewRouter()
	r.Get("/pid", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, os.Getpid()) })
	everyone := func(*http.Request) (string, error) { return "everyone", nil }
	return framework.Run(r, framework.WithApp(func(a *app.App) error {
		// The store exists from the hook on: limited routes go here.
		ok := func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, os.Getpid()) }
		r.With(httprate.Limit(limit, time.Hour, httprate.WithKeyFuncs(everyone),
			httprate.WithLimitCounter(ratecounter.New(a.Store())))).Get("/httprate", ok)
		r.With(ratecounter.NewLimiter(a.Store(), limit, time.Hour).Handler(everyone)).Get("/atomic", ok)
		return nil
	}))
}

func pinnedClients(t *testing.T, c *ct.Cluster, n int) []*http.Client {
	t.Helper()
	seen := map[string]bool{}
	var out []*http.Client
	for range 500 {
		cl := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
		_, pid, err := ct.Get(cl, c.URL("/pid"))
		if err != nil {
			t.Fatal(err)
		}
		if seen[pid] {
			cl.CloseIdleConnections()
			continue
		}
		seen[pid] = true
		out = append(out, cl)
		if len(out) == n {
			return out
		}
	}
	t.Fatalf("reached %d of %d workers", len(out), n)
	return nil
}

func status(t *testing.T, cl *http.Client, url string) int {
	t.Helper()
	resp, err := cl.Get(url)
	if err != nil {
		t.Error(err)
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestLimitsHoldAcrossWorkers: 3×limit requests spread over 3 workers get
// limit answers, not 3×limit: one after another through httprate, and all
// at once through the atomic Limiter.
func TestLimitsHoldAcrossWorkers(t *testing.T) {
	c := ct.Start(t, "limits", "BROOD_ADDR=127.0.0.1:0", "BROOD_WORKERS=3")
	c.WaitReady(60 * time.Second)
	cls := pinnedClients(t, c, 3)

	admitted := 0
	for i := range 3 * limit {
		switch st := status(t, cls[i%3], c.URL("/httprate")); st {
		case 200:
			admitted++
		case 429:
		default:
			t.Fatalf("httprate answered %d", st)
		}
	}
	if admitted != limit {
		t.Errorf("httprate over 3 workers admitted %d of %d; want %d", admitted, 3*limit, limit)
	}

	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for _, cl := range cls {
		for range 4 { // 4 at a time per worker: 12 requests racing
			wg.Go(func() {
				for range 3 * limit / 12 {
					switch status(t, cl, c.URL("/atomic")) {
					case 200:
						ok.Add(1)
					case 429:
						refused.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	if ok.Load() != limit || ok.Load()+refused.Load() != 3*limit/12*12 {
		t.Errorf("atomic limiter over 3 workers admitted %d, refused %d; want %d admitted", ok.Load(), refused.Load(), limit)
	}
}
