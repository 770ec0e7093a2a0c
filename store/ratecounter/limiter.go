package ratecounter

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/httprate"

	"github.com/broodhq/brood/store"
)

// Limiter admits at most Limit requests per key in any Window (estimated
// as a sliding window), deciding with one atomic store.Incr per request,
// so the limit holds exactly across the cluster.
type Limiter struct {
	s      store.Store
	limit  int
	window time.Duration
	now    func() time.Time
}

// NewLimiter returns a Limiter over s. It panics if limit < 1 or window is
// not from store.MinTTL to store.MaxTTL/3: a mistake in the program.
func NewLimiter(s store.Store, limit int, window time.Duration) *Limiter {
	if limit < 1 || window < store.MinTTL || window > store.MaxTTL/3 {
		panic(fmt.Sprintf("ratecounter.NewLimiter: limit %d, window %s: want limit >= 1 and a window from %s to %s", limit, window, store.MinTTL, store.MaxTTL/3))
	}
	return &Limiter{s: s, limit: limit, window: window, now: time.Now}
}

// Decision is what Allow decided.
type Decision struct {
	Allowed   bool
	Remaining int       // requests left in the window after this one
	Reset     time.Time // when the current fixed window ends
}

// Allow counts one request for key and decides. The increment comes first
// and decides: the k-th request admitted saw a count of at least k, so no
// more than the limit are ever admitted, whatever runs concurrently. A
// refused request takes its increment back, so that refusals do not eat
// into the next window.
func (l *Limiter) Allow(ctx context.Context, key string) (Decision, error) {
	now := l.now()
	start := now.Truncate(l.window)
	k := windowKey(key, start)
	n, err := l.s.Incr(ctx, k, 1, keep(l.window))
	if err != nil {
		return Decision{}, err
	}
	prev, err := count(ctx, l.s, windowKey(key, start.Add(-l.window)))
	if err != nil {
		return Decision{}, err
	}
	weight := float64(l.window-now.Sub(start)) / float64(l.window)
	rate := int(math.Round(float64(prev)*weight)) + int(n)
	d := Decision{Allowed: rate <= l.limit, Remaining: max(l.limit-rate, 0), Reset: start.Add(l.window)}
	if !d.Allowed {
		// Best effort: a failure here only over-counts, which is safe.
		l.s.Incr(ctx, k, -1, keep(l.window))
	}
	return d, nil
}

// Handler returns middleware that limits requests by keyFn (httprate's key
// functions work: httprate.KeyByIP, httprate.KeyByEndpoint), answering 429
// with Retry-After past the limit, and 503 when the store cannot decide.
func (l *Limiter) Handler(keyFn httprate.KeyFunc) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key, err := keyFn(r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusPreconditionRequired)
				return
			}
			d, err := l.Allow(r.Context(), key)
			if err != nil {
				http.Error(w, "rate limit unavailable", http.StatusServiceUnavailable)
				return
			}
			h := w.Header()
			h.Set("X-RateLimit-Limit", strconv.Itoa(l.limit))
			h.Set("X-RateLimit-Remaining", strconv.Itoa(d.Remaining))
			h.Set("X-RateLimit-Reset", strconv.FormatInt(d.Reset.Unix(), 10))
			if !d.Allowed {
				h.Set("Retry-After", strconv.Itoa(int(math.Ceil(time.Until(d.Reset).Seconds()))))
				http.Error(w, http.StatusText(http.StatusTooManyRequests), http.StatusTooManyRequests)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
