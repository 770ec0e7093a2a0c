package ratecounter

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/httprate"

	"github.com/broodhq/brood/store/memstore"
)

func TestLimiterAdmitsExactlyTheLimitUnderConcurrency(t *testing.T) {
	ms := memstore.New()
	defer ms.Close()
	l := NewLimiter(ms, 50, time.Hour)
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for range 10 {
				d, err := l.Allow(context.Background(), "k")
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					admitted.Add(1)
				} else {
					refused.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if admitted.Load() != 50 || refused.Load() != 150 {
		t.Fatalf("admitted %d, refused %d of 200; want 50 and 150", admitted.Load(), refused.Load())
	}
	// Refusals took their increments back: the count is what was admitted.
	if v, _, _ := ms.Get(context.Background(), windowKey("k", time.Now().Truncate(time.Hour))); string(v) != "50" {
		t.Fatalf("counter = %s; want 50", v)
	}
}

// TestLimiterSlidesAcrossWindows: a full previous window weighs on the
// next in proportion to what is left of it.
func TestLimiterSlidesAcrossWindows(t *testing.T) {
	ms := memstore.New()
	defer ms.Close()
	l := NewLimiter(ms, 10, time.Minute)
	base := time.Now().Truncate(time.Minute).Add(-time.Minute) // the previous window
	now := base
	l.now = func() time.Time { return now }
	admit := func() (n int) {
		for range 20 {
			if d, _ := l.Allow(context.Background(), "k"); d.Allowed {
				n++
			}
		}
		return n
	}
	if n := admit(); n != 10 {
		t.Fatalf("first window admitted %d; want 10", n)
	}
	now = base.Add(time.Minute + 15*time.Second) // a quarter into the next: the previous weighs 7.5
	if n := admit(); n != 2 {
		t.Fatalf("a quarter into the next window admitted %d; want 2 (10 - round(7.5))", n)
	}
	now = base.Add(3 * time.Minute) // two windows later: nothing weighs
	if n := admit(); n != 10 {
		t.Fatalf("two windows later admitted %d; want 10", n)
	}
}

func TestLimiterHandler(t *testing.T) {
	ms := memstore.New()
	defer ms.Close()
	h := NewLimiter(ms, 2, time.Hour).Handler(httprate.KeyByIP)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	codes := []int{}
	for range 3 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		codes = append(codes, rec.Code)
		if rec.Code == 429 && rec.Header().Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 {
		t.Fatalf("codes %v; want 200 200 429", codes)
	}
	ms.Close()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("with the store closed: %d; want 503", rec.Code)
	}
}

// TestCounterSharedByTwoLimiters: two httprate limiters (two workers) on
// one store admit the limit between them, not twice it.
func TestCounterSharedByTwoLimiters(t *testing.T) {
	ms := memstore.New()
	defer ms.Close()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	var hs []http.Handler
	for range 2 {
		hs = append(hs, httprate.Limit(10, time.Hour, httprate.WithKeyFuncs(httprate.KeyByIP), httprate.WithLimitCounter(New(ms)))(ok))
	}
	admitted := 0
	for i := range 40 {
		rec := httptest.NewRecorder()
		hs[i%2].ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code == 200 {
			admitted++
		}
	}
	if admitted != 10 {
		t.Fatalf("two limiters of 10 admitted %d; want 10", admitted)
	}
}

func TestLongKeysAreHashed(t *testing.T) {
	k := windowKey(string(make([]byte, 5000)), time.Now())
	if len(k) > 100 {
		t.Fatalf("key of %d bytes", len(k))
	}
}
