// Package ratecounter counts rate limits once for the whole cluster, in
// the cluster's store, instead of once per worker process.
//
// Two ways, for two needs:
//
// New returns an httprate.LimitCounter (github.com/go-chi/httprate), a
// drop-in for applications that already use httprate:
//
//	httprate.Limit(100, time.Minute,
//		httprate.WithKeyFuncs(httprate.KeyByIP),
//		httprate.WithLimitCounter(ratecounter.New(a.Store())))
//
// httprate reads the count, decides, then increments: two store calls,
// and between them other workers may decide on the same count. Each worker
// serialises its own decisions, so requests that arrive one after another
// are counted exactly; a burst that reaches several workers at the same
// moment can be let through up to about one request per worker beyond the
// limit. Use it where that is fine: most limits that protect capacity.
//
// NewLimiter is a limiter whose check is the increment: one atomic Incr
// per request decides, so the limit holds exactly however many workers a
// burst reaches. Use it where the number matters: login attempts, paid API
// quotas, anything an attacker would race. It estimates a sliding window
// from the current and previous fixed windows as httprate does.
//
// Both align windows to the wall clock, so every worker (and every host on
// a shared Redis) agrees on them.
package ratecounter
