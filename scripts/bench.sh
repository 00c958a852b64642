#!/usr/bin/env bash
# Runs every Go benchmark of the workspace and writes the results, with the machine and the
# date, into the file named by $1 (default docs/BENCHMARKS.md).
#
# Benchmarks that compare against a baseline run the baseline in the same process and report
# the ratio themselves (b.ReportMetric), so the numbers below are comparable even on a noisy,
# shared machine. BENCHTIME (default 1s) and BENCH (default .) narrow a run.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/BENCHMARKS.md}
BENCHTIME=${BENCHTIME:-1s}
BENCH=${BENCH:-.}
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || echo unknown)
{
	echo "# Benchmarks"
	echo
	echo "Written by \`make bench\` (scripts/bench.sh); do not edit by hand."
	echo
	echo "| | |"
	echo "|---|---|"
	echo "| date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
	echo "| machine | $cpu, $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) |"
	echo "| kernel | $(uname -sr) |"
	echo "| go | $(go version | cut -d' ' -f3-) |"
	echo "| commit | $(git rev-parse --short HEAD 2>/dev/null || echo none)$(git diff --quiet 2>/dev/null || echo ' (dirty)') |"
	echo "| benchtime | $BENCHTIME |"
	echo
	echo "Ratios (\`x_baseline\`, \`ratio\`) compare against a baseline measured in the same run."
	echo
} >"$tmp"

for mod in $(go list -m -f '{{.Dir}}'); do
	for pkg in $(cd "$mod" && go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./...); do
		dir=$(cd "$mod" && go list -f '{{.Dir}}' "$pkg")
		grep -qsE '^func Benchmark' "$dir"/*_test.go || continue
		echo "== $pkg" >&2
		res=$(cd "$mod" && go test -run '^$' -bench "$BENCH" -benchmem -benchtime "$BENCHTIME" -count 1 "$pkg" 2>&1 | grep -E '^(Benchmark|ok|FAIL|---|panic)' || true)
		{
			echo "## \`$pkg\`"
			echo
			echo '```'
			echo "$res"
			echo '```'
			echo
		} >>"$tmp"
	done
done
mkdir -p "$(dirname "$out")"
mv "$tmp" "$out"
trap - EXIT
echo "wrote $out" >&2
