#!/usr/bin/env bash
# Reports people look at, from files (no root): the 1,000,000-trace,
# 100,000-traceback benchmark snapshot (tools/bench_gen.py) as pprof (read by
# Debian's `go tool pprof`: same totals and top line as `tmbpf stats`, under
# 3 s to convert), folded stacks (same total) and a flame graph page
# rendered in headless Chromium (no console error, the top allocation site
# shown, search works, loaded in under 2 s; screenshot in build/reports/).
# Captures with function names are checked in tests/e2e/reports.sh.
set -u
cd "$(dirname "$0")/../.." || exit 1
top=$PWD
T=$top/tmbpf
PYENV_ROOT=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
work=$(mktemp -d /tmp/tmbpf-reports.XXXXXX)
trap 'rm -rf "$work"' EXIT
art=build/reports
mkdir -p "$art" build/bench
. tests/reports/lib.sh

py=$(ls -d "$PYENV_ROOT"/versions/3.12.*/bin/python3.12 2>/dev/null | tail -1)
[ -n "$py" ] || py=$(command -v python3)
pickle=build/bench/snap-1000000x25.pickle
if [ ! -s "$pickle" ] || [ tools/bench_gen.py -nt "$pickle" ]; then
	"$py" tools/bench_gen.py "$pickle.tmp" 1000000 25 && mv "$pickle.tmp" "$pickle"
fi
snap=$work/big.tmbpf
$T convert "$pickle" "$snap" 2> /dev/null || { echo "not ok - reports: cannot convert $pickle"; exit 0; }

# The reference: tmbpf's own total and top statistic.
total=$($T info "$snap" --json | "$py" -c 'import json,sys; print(json.load(sys.stdin)["total_size"])')
read -r top_line top_size top_count < <($T stats "$snap" --limit 1 --json 2> /dev/null | "$py" -c '
import json, sys
s = json.load(sys.stdin)["statistics"][0]
f = s["traceback"][-1]
print("%s:%d" % (f["filename"], f["lineno"]), s["size"], s["count"])')

# pprof: 1,000,000 traces in under 3 s, then go tool pprof reads it.
t0=$(date +%s%N)
$T convert "$snap" "$work/big.pb.gz" 2> /dev/null
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $ms -lt 3000 ] && echo "ok - reports: pprof of 1,000,000 traces written in $ms ms" ||
	echo "not ok - reports: pprof of 1,000,000 traces took $ms ms (limit 3000)"
if command -v go > /dev/null; then
	pprof_check "bench snapshot" "$work/big.pb.gz" "$total" "$top_line" "$top_size" "$top_count" 1000000
else
	skip_or_fail "reports: go tool pprof: golang-go is not installed (.ci/run installs it)"
fi

# Folded stacks: the weights add up to the total.
$T convert "$snap" "$work/big.folded" 2> /dev/null
sum=$(awk '{ s += $NF } END { printf "%.0f", s }' "$work/big.folded")
[ "$sum" = "$total" ] && echo "ok - reports: folded stacks weigh $sum bytes, tmbpf's total" ||
	echo "not ok - reports: folded stacks weigh $sum, total is $total"
bad=$(awk '$NF !~ /^[0-9]+$/' "$work/big.folded" | head -1)
[ -z "$bad" ] && echo "ok - reports: every folded line ends with its weight" ||
	echo "not ok - reports: folded line without a weight: $bad"

# Loading a large file: a progress line when stderr is a terminal (script(1)
# gives it one), erased at the end; nothing when it is not. The pickle (35 MB,
# over PROGRESS_PICKLE_BYTES) is announced whatever the speed; the native
# file only after 0.3 s, which a fast machine never reaches (it loaded in
# less: no line, and this check failed there).
if command -v script > /dev/null; then
	script -q -c "$T stats $pickle --limit 1" /dev/null > "$work/tty.out" 2>&1
	if grep -q $'\rtmbpf: loading[a-z ]*: [0-9]*%' "$work/tty.out" && grep -q $'\r\033\[K' "$work/tty.out"; then
		echo "ok - reports: progress on a terminal: $(tr '\r' '\n' < "$work/tty.out" | grep -m1 -a 'loading' | tr -d '\033')"
	else
		echo "not ok - reports: no progress line on a terminal: $(head -c 200 "$work/tty.out" | cat -v)"
	fi
fi
$T stats "$pickle" --limit 1 > /dev/null 2> "$work/err"
grep -q loading "$work/err" && echo "not ok - reports: progress printed to a non-terminal" ||
	echo "ok - reports: no progress line when stderr is not a terminal"

# The flame graph page of 10^5 distinct tracebacks.
$T flamegraph "$snap" -o "$work/big.html" 2> /dev/null
if command -v chromium > /dev/null; then
	page_check "bench snapshot (10^5 tracebacks)" "$work/big.html" "*$top_line*" "module_85" 2000 \
		"$art/flamegraph-bench.png"
else
	skip_or_fail "reports: chromium is not installed (.ci/run installs it)"
fi
exit 0
