package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// compare runs the round trip on both routes, round by round in turn, each
// round a fresh cluster: the direct channels between a worker and the
// agent, and the route through the master (BROOD_MESSENGER_RELAY=1), with
// the bare 4-hop relay and the bare 2-hop ping-pong measured in the direct
// round alongside.
func compare() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	type stat struct{ p50, p99 []time.Duration }
	res := map[string]*stat{}
	add := func(name string, p50, p99 time.Duration) {
		if res[name] == nil {
			res[name] = &stat{}
		}
		res[name].p50 = append(res[name].p50, p50)
		res[name].p99 = append(res[name].p99, p99)
	}
	line := regexp.MustCompile(`^(round trip|bare relay|bare ping-pong|one-way) +round \d+: (?:p50 (\S+) +p90 \S+ +p99 (\S+)|\s*(\d+) messages/s)`)
	ratioLine := regexp.MustCompile(`^round trip / ping-pong round \d+: p50 x(\S+)`)
	var ratios []float64
	oneway := map[string][]float64{}
	for r := range *rounds {
		for _, route := range []string{"direct", "relay"} {
			args := []string{"-rounds", "1", "-calls", fmt.Sprint(*calls), "-n", fmt.Sprint(*n), "-workers", fmt.Sprint(*workers)}
			if route == "direct" {
				args = append(args, "-baseline")
			}
			cmd := exec.Command(exe, args...)
			cmd.Env = append(os.Environ(), "BENCH_INNER=1")
			if route == "relay" {
				cmd.Env = append(cmd.Env, "BROOD_MESSENGER_RELAY=1")
			}
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				return err
			}
			if err := cmd.Start(); err != nil {
				return err
			}
			s := bufio.NewScanner(out)
			for s.Scan() {
				if m := ratioLine.FindStringSubmatch(s.Text()); m != nil {
					var v float64
					fmt.Sscan(m[1], &v)
					ratios = append(ratios, v)
					fmt.Printf("round %d %-6s %s\n", r+1, route, s.Text())
					continue
				}
				m := line.FindStringSubmatch(s.Text())
				if m == nil {
					continue
				}
				fmt.Printf("round %d %-6s %s\n", r+1, route, s.Text())
				name := route + " " + m[1]
				switch m[1] {
				case "bare relay", "bare ping-pong":
					name = m[1]
				case "one-way":
					var v float64
					fmt.Sscan(m[4], &v)
					oneway[route] = append(oneway[route], v)
					continue
				}
				p50, _ := time.ParseDuration(m[2])
				p99, _ := time.ParseDuration(m[3])
				add(name, p50, p99)
			}
			if err := cmd.Wait(); err != nil {
				return fmt.Errorf("%s round: %w", route, err)
			}
		}
	}
	fmt.Printf("\nmedians of %d rounds, CallAgent round trip:\n", *rounds)
	for _, name := range []string{"direct round trip", "relay round trip", "bare relay", "bare ping-pong"} {
		if st := res[name]; st != nil {
			fmt.Printf("  %-20s p50 %-10v p99 %v\n", strings.TrimSuffix(name, " round trip"), median(st.p50), median(st.p99))
		}
	}
	if len(ratios) > 0 {
		fmt.Printf("  direct / bare ping-pong, interleaved in blocks of 500: p50 x%.2f (median of rounds; rounds %v)\n", medianF(ratios), ratios)
	}
	for _, route := range []string{"direct", "relay"} {
		if v := oneway[route]; len(v) > 0 {
			fmt.Printf("  one-way %-7s %.0f messages/s (median)\n", route, medianF(v))
		}
	}
	return nil
}

func medianF(v []float64) float64 {
	s := append([]float64(nil), v...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}
