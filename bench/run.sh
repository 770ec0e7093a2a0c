#!/usr/bin/env bash
# Runs every brood benchmark in bounded time (about 6 minutes on a quiet
# 2-core machine, at most 40 when other work keeps it busy, plus up to 20
# waiting for other benchmarks to finish; QUICK=1 for about 2) and keeps the raw outputs in bench/results/,
# which git ignores. Every server it starts is stopped by pid; every step has
# a timeout. Run it with nothing else busy on the machine: the programs wait
# (bounded) for a quiet machine before each run and say when they could not.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p results

# One benchmark at a time on this machine: hold the shared lock for the
# whole run (the Go programs see BROOD_BENCH_LOCK_HELD and do not wait for
# it again). Waits at most 20 minutes for other benchmarks to finish.
if [[ "${BROOD_BENCH_LOCK_HELD:-}" != 1 ]] && command -v flock >/dev/null; then
	echo "== waiting for /tmp/brood-bench.lock (other benchmarks on this machine), at most 20 min"
	export BROOD_BENCH_LOCK_HELD=1
	exec flock -w 1200 /tmp/brood-bench.lock "$0" "$@"
fi

rounds=5 wrkrounds=3 dur=5s startups=20
if [[ "${QUICK:-}" == 1 ]]; then
	rounds=2 wrkrounds=1 dur=3s startups=10
fi

if ! command -v wrk >/dev/null; then
	echo "== installing wrk (Debian package) for the cross-check"
	{ apt-get install -y wrk || { apt-get update && apt-get install -y wrk; }; } >results/apt.log 2>&1 ||
		echo "   could not install wrk (see results/apt.log); the wrk cross-check is skipped"
fi

{
	echo "date:    $(date -u +%FT%TZ)"
	# $COMMIT names the tree when it is not a git checkout (an exported snapshot).
	echo "commit:  ${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- .. 2>/dev/null || echo ' (with uncommitted changes)')}"
	echo "cpus:    $(nproc)"
	echo "kernel:  $(uname -r)"
	echo "go:      $(go version)"
	echo "wrk:     $(if command -v wrk >/dev/null; then { wrk -v 2>&1 || true; } | head -1; else echo none; fi)"
} | tee results/machine.txt

echo "== building"
go build -o results/bin/ ./cmd/load

echo "== startup: exec to first 200, $startups runs each"
timeout 300 go run ./cmd/startup -n "$startups" | tee results/startup.txt

echo "== idle RSS"
timeout 120 go run ./cmd/rss | tee results/rss.txt

echo "== throughput, in-process Go generator"
timeout 1200 go run ./cmd/throughput -conns 50,200 -rounds "$rounds" -d "$dur" | tee results/throughput-load.txt

if command -v wrk >/dev/null; then
	echo "== throughput, wrk as the generator (cross-check)"
	timeout 900 go run ./cmd/throughput -gen wrk -conns 50,200 -rounds "$wrkrounds" -d "$dur" | tee results/throughput-wrk.txt
fi
echo "== done; raw outputs in bench/results/"
