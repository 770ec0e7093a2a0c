package loadgen

import (
	"fmt"
	"strings"
	"time"
)

// Errors counts failed requests by kind.
type Errors struct {
	Refused int64 `json:"refused"` // connect refused: nothing listening
	Reset   int64 `json:"reset"`   // connection reset or broken pipe
	Timeout int64 `json:"timeout"` // no complete response within Config.Timeout
	Closed  int64 `json:"closed"`  // the server closed the connection before a complete response
	Non2xx  int64 `json:"non_2xx"` // a complete response whose status was not 2xx
	Other   int64 `json:"other"`   // anything else (a malformed response, a dial error)
}

// Total is the number of failed requests.
func (e Errors) Total() int64 {
	return e.Refused + e.Reset + e.Timeout + e.Closed + e.Non2xx + e.Other
}

func (e *Errors) add(o Errors) {
	e.Refused += o.Refused
	e.Reset += o.Reset
	e.Timeout += o.Timeout
	e.Closed += o.Closed
	e.Non2xx += o.Non2xx
	e.Other += o.Other
}

// Result is what one run measured.
type Result struct {
	Generator string  `json:"generator"` // "load" for this package; wrappers of other tools set their name
	URL       string  `json:"url"`
	Conns     int     `json:"conns"`
	Fresh     bool    `json:"fresh_connections"`
	Elapsed   float64 `json:"elapsed_s"`
	OK        int64   `json:"ok"` // 2xx responses
	Errors    Errors  `json:"errors"`
	RPS       float64 `json:"rps"` // OK per second of Elapsed
	// Latency of complete responses, whatever their status, in
	// milliseconds.
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// Ms converts a duration to float milliseconds, the unit of Result.
func Ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// String formats r for people, in a few aligned lines.
func (r Result) String() string {
	var b strings.Builder
	mode := "keep-alive"
	if r.Fresh {
		mode = "a fresh connection per request"
	}
	fmt.Fprintf(&b, "target   %s, %d connections, %s, %.2fs (%s)\n", r.URL, r.Conns, mode, r.Elapsed, r.Generator)
	e := r.Errors
	fmt.Fprintf(&b, "requests %d ok, %d errors (refused %d, reset %d, timeout %d, closed %d, non-2xx %d, other %d)\n",
		r.OK, e.Total(), e.Refused, e.Reset, e.Timeout, e.Closed, e.Non2xx, e.Other)
	fmt.Fprintf(&b, "rate     %.0f requests/s\n", r.RPS)
	fmt.Fprintf(&b, "latency  p50 %.3fms  p90 %.3fms  p99 %.3fms  max %.3fms\n", r.P50, r.P90, r.P99, r.Max)
	return b.String()
}
