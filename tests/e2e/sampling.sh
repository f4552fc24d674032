#!/usr/bin/env bash
# Sampled mode's accuracy: live/sampled_lines.py holds ~170 MB on six lines
# of one block size each (8 B to 1 MiB). One full-mode run is the reference;
# TMBPF_SAMPLE_RUNS (default 5) runs with --sample-bytes 16k must each
# estimate every line holding >= 5 % of the bytes within 10 % (bytes and
# blocks), read back by CPython's own tracemalloc from the pickle tmbpf
# wrote (so the pickle holds the estimates). The program's output must be
# that of an untraced run in every mode.
set -u
cd "$(dirname "$0")/../.." || exit 1
top=$PWD
PYENV_ROOT=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
runs=${TMBPF_SAMPLE_RUNS:-5}
work=$(mktemp -d /tmp/tmbpf-sampling.XXXXXX)
trap 'rm -rf "$work"' EXIT
[ "$(id -u)" -eq 0 ] || { echo "skip - sampling: needs root"; exit 0; }
prog=$top/tests/e2e/live/sampled_lines.py
cmp_py=$(ls -d "$PYENV_ROOT"/versions/3.12.*/bin/python3.12 2>/dev/null | head -1)
[ -n "$cmp_py" ] || { echo "not ok - sampling: no pyenv 3.12 to read the pickles"; exit 0; }

export TM_ALLOC8_LIB=$work/alloc8.so
cc -shared -fPIC -O2 -o "$TM_ALLOC8_LIB" "$top/tests/e2e/live/alloc8.c" ||
	{ echo "not ok - sampling: cannot build live/alloc8.c"; exit 0; }

kinds=("pyenv-3.12|$cmp_py")
[ -x /usr/bin/python3.11 ] && kinds+=("debian-3.11|/usr/bin/python3.11")

for kind in "${kinds[@]}"; do
	tag=${kind%%|*}
	py=${kind#*|}
	d=$work/$tag
	mkdir -p "$d"
	"$py" "$prog" > "$d/plain.out" 2>&1
	# 2.9 M live blocks: room for them all
	if ! ./tmbpf run --frames 25 --max-blocks 4194304 -o "$d/full.pickle" -- "$py" "$prog" \
		> "$d/full.out" 2> "$d/full.err"; then
		echo "not ok - sampling $tag: full-mode run failed: $(tail -1 "$d/full.err")"
		continue
	fi
	if ! grep -q "drops: 0$" "$d/full.err"; then
		echo "not ok - sampling $tag: the full-mode reference lost events: $(grep drop "$d/full.err" | tr "\n" " ")"
		continue
	fi
	bad=0
	worst_all=0
	for i in $(seq "$runs"); do
		if ! ./tmbpf run --frames 25 --sample-bytes 16k -o "$d/s$i.pickle" -- "$py" "$prog" \
			> "$d/s$i.out" 2> "$d/s$i.err"; then
			echo "not ok - sampling $tag: sampled run $i failed: $(tail -1 "$d/s$i.err")"
			bad=1
			continue
		fi
		res=$("$cmp_py" "$top/tests/e2e/sample_compare.py" "$d/full.pickle" "$d/s$i.pickle" 2>&1)
		last=$(echo "$res" | tail -1)
		worst=$(echo "$last" | sed -n 's/^worst=\([0-9.]*\).*/\1/p')
		if ! echo "$last" | grep -q "lines=[6-9].*within=yes"; then
			echo "not ok - sampling $tag: run $i: $last"
			echo "$res" | sed 's/^/#   /'
			bad=1
		fi
		if ! cmp -s "$d/plain.out" "$d/s$i.out"; then
			echo "not ok - sampling $tag: run $i: program output differs from an untraced run"
			bad=1
		fi
		grep -q "drops: 0$" "$d/s$i.err" ||
			{ echo "not ok - sampling $tag: run $i lost events: $(grep drop "$d/s$i.err" | tr "\n" " ")"; bad=1; }
		[ -n "$worst" ] && worst_all=$(awk -v a="$worst_all" -v b="$worst" 'BEGIN { print (b > a) ? b : a }')
	done
	if [ $bad -eq 0 ]; then
		echo "ok - sampling $tag: $runs runs at 16 KiB, every line >= 5 % within 10 % of full mode (worst $(awk -v w="$worst_all" 'BEGIN { printf "%.1f", w * 100 }') %)"
	fi
	cmp -s "$d/plain.out" "$d/full.out" ||
		echo "not ok - sampling $tag: full-mode program output differs from an untraced run"
done

exit 0
