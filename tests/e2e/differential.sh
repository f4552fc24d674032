#!/usr/bin/env bash
# End-to-end differential tests of capture: each program in tests/e2e/programs
# runs under `tmbpf run --frames 25 -o X.pickle` and under CPython's own
# tracemalloc with 25 frames (the oracle); live bytes per line of the
# program's files (cumulative) must agree >= 99% and the top 5 lines match.
# Also: the program's output equals an untraced run's. Needs root and BPF.
set -u
cd "$(dirname "$0")/../.." || exit 1
top=$PWD
progs=$top/tests/e2e/programs
work=$(mktemp -d ${TMPDIR:-/tmp}/tmbpf-e2e.XXXXXX)
trap 'rm -rf "$work"' EXIT
TIMEOUT=${TIMEOUT:-60}
PYENV_ROOT=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
summary=$top/build/e2e-summary.txt
: >> "$summary"

if [ "$(id -u)" -ne 0 ]; then
	echo "skip - e2e: needs root for BPF (run: sudo make test)"
	exit 0
fi
if [ ! -x ./tmbpf ]; then
	echo "not ok - e2e: ./tmbpf is not built"
	exit 1
fi

# The comparison is computed by one CPython >= 3.9 for every version.
cmp_py=$(ls -d "$PYENV_ROOT"/versions/3.12.*/bin/python3.12 2>/dev/null | head -1)
[ -n "$cmp_py" ] || cmp_py=$(command -v python3)

interpreters=()
if [ -n "${TMBPF_E2E_ONLY_DEBIAN:-}" ]; then
	interpreters=(/usr/bin/python3.11) # tests/e2e/debian.sh
else
	for v in 3.8 3.9 3.10 3.11 3.12 3.13; do
		p=$(ls -d "$PYENV_ROOT"/versions/$v.*/bin/python$v 2>/dev/null | head -1)
		if [ -n "$p" ]; then interpreters+=("$p"); else echo "skip - e2e python$v: not installed in $PYENV_ROOT"; fi
	done
fi

programs=${E2E_PROGRAMS:-$(cd "$progs" && ls *.py | grep -v tm_oracle.py)}
# Helpers of the programs, built once into the run's own directory.
export TM_CTHREADS_LIB=$work/cthreads_loop.so
cc -shared -fPIC -O2 -pthread -o "$TM_CTHREADS_LIB" "$progs/cthreads_loop.c" ||
	echo "not ok - e2e: cannot build $progs/cthreads_loop.c"
for py in "${interpreters[@]}"; do
	ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
	tag="python$ver"
	[ "$py" = /usr/bin/python3.11 ] && tag="debian-python3.11"
	worst=1
	for prog in $programs; do
		name=${prog%.py}
		d=$work/$tag-$name
		mkdir -p "$d"
		(cd "$progs" && timeout "$TIMEOUT" "$py" "$progs/$prog" > "$d/plain.out" 2>&1)
		(cd "$progs" && TM_ORACLE_OUT=$d/oracle.pickle timeout "$TIMEOUT" "$py" -X tracemalloc=25 "$progs/$prog" > "$d/oracle.out" 2>&1)
		(cd "$progs" && timeout "$TIMEOUT" "$top/tmbpf" run --frames 25 -o "$d/tmbpf.pickle" -- "$py" "$progs/$prog" > "$d/tmbpf.out" 2> "$d/tmbpf.err")
		rc=$?
		if [ $rc -ne 0 ] || [ ! -s "$d/tmbpf.pickle" ]; then
			echo "not ok - e2e $tag $name: tmbpf run exited $rc: $(tail -1 "$d/tmbpf.err")"
			worst=0
			continue
		fi
		if ! cmp -s "$d/plain.out" "$d/tmbpf.out"; then
			echo "not ok - e2e $tag $name: program output differs from an untraced run"
		else
			echo "ok - e2e $tag $name: program output identical to an untraced run"
		fi
		res=$(cd "$progs" && "$cmp_py" "$top/tests/e2e/compare.py" "$d/tmbpf.pickle" "$d/oracle.pickle" "$progs" 2>&1)
		first=$(echo "$res" | head -1)
		echo "$tag $name $first" >> "$summary"
		agree=$(echo "$first" | sed -n 's/.*agreement=\([0-9.]*\).*/\1/p')
		if [ -n "$agree" ] && awk "BEGIN{exit !($agree >= 0.99)}" && echo "$first" | grep -q 'top5=same'; then
			echo "ok - e2e $tag $name: $first"
		else
			echo "not ok - e2e $tag $name: $first"
			echo "$res" | tail -n +2 | sed 's/^/#  /'
		fi
		if grep -qiE 'drop' "$d/tmbpf.err" && grep -E 'drop' "$d/tmbpf.err" | grep -qvE ' 0( |$)'; then
			echo "# $tag $name: $(grep -i drop "$d/tmbpf.err" | head -1)"
		fi
	done
done
echo "# e2e agreement per run: build/e2e-summary.txt"

# A suite reports failures as "not ok" lines; reaching this line means it ran to its end.
exit 0
