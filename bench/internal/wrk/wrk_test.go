package wrk

import (
	"math"
	"testing"
)

const report = `Running 3s test @ http://127.0.0.1:18091/
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.24ms    1.74ms  16.05ms   86.53%
    Req/Sec    36.96k     7.57k   52.02k    61.67%
  Latency Distribution
     50%  515.00us
     75%    1.47ms
     90%    3.65ms
     99%    7.95ms
  220603 requests in 3.01s, 27.56MB read
  Socket errors: connect 0, read 2, write 1, timeout 3
  Non-2xx or 3xx responses: 603
Requests/sec:  73393.96
Transfer/sec:      9.17MB
`

func TestParse(t *testing.T) {
	r, err := parse(report)
	if err != nil {
		t.Fatal(err)
	}
	near := func(name string, got, want float64) {
		if math.Abs(got-want) > 1e-9*math.Max(1, want) {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
	near("p50", r.P50, 0.515)
	near("p90", r.P90, 3.65)
	near("p99", r.P99, 7.95)
	near("max", r.Max, 16.05)
	near("elapsed", r.Elapsed, 3.01)
	if r.OK != 220000 || r.Errors.Non2xx != 603 || r.Errors.Reset != 3 || r.Errors.Timeout != 3 {
		t.Errorf("counts: got ok %d, errors %+v; want 220000 ok, 603 non-2xx, 3 reset, 3 timeout", r.OK, r.Errors)
	}
	near("rps", r.RPS, 220000/3.01)
	if _, err := parse("wrk: connection refused\n"); err == nil {
		t.Error("a report without numbers: got no error")
	}
}
