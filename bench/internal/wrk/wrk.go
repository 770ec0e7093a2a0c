// Package wrk runs the wrk load generator (the Debian package) and reads
// its report into the same Result the in-process generator returns, so a
// comparison can be repeated with a generator written in C to check that
// ours is not what limits it.
package wrk

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/broodhq/brood/bench/internal/loadgen"
)

// ErrNotInstalled is returned when no wrk is on $PATH.
var ErrNotInstalled = errors.New("wrk is not installed (apt-get install -y wrk)")

// Run runs wrk with threads threads and conns connections against url for
// d and returns its result and the CPU time wrk used.
func Run(ctx context.Context, url string, threads, conns int, d time.Duration) (loadgen.Result, time.Duration, error) {
	return RunScript(ctx, url, threads, conns, d, "")
}

// RunScript is Run with wrk's -s: script is the path of a Lua script
// ("" for none), for requests that differ, such as a cookie per session.
func RunScript(ctx context.Context, url string, threads, conns int, d time.Duration, script string) (loadgen.Result, time.Duration, error) {
	if err := loadgen.CheckURL(url); err != nil {
		return loadgen.Result{}, 0, fmt.Errorf("wrk: %w", err)
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		return loadgen.Result{}, 0, ErrNotInstalled
	}
	secs := max(1, int(d.Round(time.Second)/time.Second))
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	args := []string{"--latency", "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns), "-d", fmt.Sprintf("%ds", secs)}
	if script != "" {
		args = append(args, "-s", script)
	}
	cmd := exec.CommandContext(ctx, "wrk", append(args, url)...)
	out, err := cmd.Output()
	if err != nil {
		return loadgen.Result{}, 0, fmt.Errorf("wrk: %w: %s", err, out)
	}
	var cpu time.Duration
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	res, err := parse(string(out))
	if err != nil {
		return res, cpu, fmt.Errorf("wrk: %w:\n%s", err, out)
	}
	res.URL, res.Conns = url, conns
	return res, cpu, nil
}

// parse reads wrk's --latency report.
func parse(out string) (loadgen.Result, error) {
	res := loadgen.Result{Generator: "wrk"}
	var total int64
	var seen int
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		var err error
		switch {
		case f[0] == "Latency" && len(f) >= 4: // Latency avg stdev max +/-
			res.Max, err = ms(f[3])
		case f[0] == "50%" && len(f) == 2:
			res.P50, err = ms(f[1])
			seen++
		case f[0] == "90%" && len(f) == 2:
			res.P90, err = ms(f[1])
		case f[0] == "99%" && len(f) == 2:
			res.P99, err = ms(f[1])
		case len(f) >= 5 && f[1] == "requests" && f[2] == "in": // N requests in 5.00s, X read
			total, err = strconv.ParseInt(f[0], 10, 64)
			if err == nil {
				var s float64
				s, err = ms(strings.TrimSuffix(f[3], ","))
				res.Elapsed = s / 1000
			}
			seen++
		case f[0] == "Socket" && len(f) == 10: // Socket errors: connect 0, read 0, write 0, timeout 0
			n := func(s string) int64 { v, _ := strconv.ParseInt(strings.TrimSuffix(s, ","), 10, 64); return v }
			res.Errors.Refused = n(f[3]) // wrk counts every failed connect here
			res.Errors.Reset = n(f[5]) + n(f[7])
			res.Errors.Timeout = n(f[9])
		case strings.HasPrefix(sc.Text(), "  Non-2xx or 3xx responses:"):
			res.Errors.Non2xx, err = strconv.ParseInt(f[len(f)-1], 10, 64)
		}
		if err != nil {
			return res, err
		}
	}
	if seen < 2 || res.Elapsed <= 0 {
		return res, errors.New("no latency distribution or request count in the report")
	}
	res.OK = total - res.Errors.Non2xx
	res.RPS = float64(res.OK) / res.Elapsed
	return res, nil
}

// ms converts wrk's "515.00us", "3.65ms", "1.02s" or "2.00m" to
// milliseconds.
func ms(s string) (float64, error) {
	units := []struct {
		suffix string
		ms     float64
	}{{"us", 1e-3}, {"ms", 1}, {"s", 1e3}, {"m", 60e3}, {"h", 3600e3}}
	for _, u := range units {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("duration %q: %w", s, err)
			}
			return f * u.ms, nil
		}
	}
	return 0, fmt.Errorf("duration %q: unknown unit", s)
}
