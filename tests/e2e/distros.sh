#!/usr/bin/env bash
# Distribution CPythons in the Debian roots of tools/test_roots.sh: sid's
# python3.13, python3.14, python3.15 and python3.14-dbg, trixie's python3.13
# (LTO+PGO static builds with inlined allocator guards, and a debug build).
#  - the differential programs of differential.sh, each under
#    `tmbpf run --frames 25 -- chroot ROOT PY PROG` (the launcher follows
#    the exec through chroot) and under that interpreter's own tracemalloc
#    (the oracle), compared inside the root by that interpreter (its
#    Snapshot.load reads both pickles): agreement >= 0.995, top lines the same,
#    program output identical to an untraced run;
#  - numpy's data buffers (PyTraceMalloc_Track, domain 389047) exactly as the
#    oracle has them, where numpy exists (sid 3.14/3.15, trixie 3.13);
#  - `-v` shows no probe on a single-stepped instruction.
# Every file the suite writes is under a directory it creates inside the
# root's /tmp, removed at the end. Needs root.
set -u
cd "$(dirname "$0")/../.." || exit 1
top=$PWD
ROOTS=${TMBPF_ROOTS:-/var/cache/tmbpf-test}
TIMEOUT=${TIMEOUT:-90}
MIN_AGREEMENT=0.995
summary=$top/build/e2e-distro-summary.txt
mkdir -p build
: > "$summary"

[ "$(id -u)" -eq 0 ] || { echo "skip - distros: needs root (chroot, BPF)"; exit 0; }
[ -x ./tmbpf ] || { echo "not ok - distros: ./tmbpf is not built"; exit 1; }

# ROOT INTERPRETER TAG NUMPY
targets=(
	"sid python3.13 sid-python3.13 0"
	"sid python3.14 sid-python3.14 1"
	"sid python3.15 sid-python3.15 1"
	"sid python3.14d sid-python3.14-dbg 1"
	"trixie python3.13 trixie-python3.13 1"
)
works=()
trap 'for w in "${works[@]}"; do rm -rf "$w"; done' EXIT

programs=${E2E_PROGRAMS:-$(cd tests/e2e/programs && ls *.py | grep -v tm_oracle.py)}
cc -shared -fPIC -O2 -pthread -o "build/cthreads_loop.so" tests/e2e/programs/cthreads_loop.c ||
	echo "not ok - distros: cannot build cthreads_loop.c"

# A directory of ours inside ROOT with the programs; prints its path in the root.
setup_root() { # ROOT
	local w
	w=$(mktemp -d "$1/tmp/tmbpf-e2e.XXXXXX") || return 1
	cp tests/e2e/programs/*.py tests/e2e/compare.py tests/e2e/distro/*.py build/cthreads_loop.so "$w/"
	echo "$w"
}

declare -A inroot
for r in sid trixie; do
	if [ ! -s "$ROOTS/$r/VERSIONS" ]; then
		echo "skip - distros $r: no test root at $ROOTS/$r (tools/test_roots.sh builds it)"
		continue
	fi
	w=$(setup_root "$ROOTS/$r") || { echo "not ok - distros $r: cannot write into $ROOTS/$r/tmp"; continue; }
	works+=("$w") # here: setup_root runs in a subshell
	inroot[$r]=${w#"$ROOTS/$r"}
done

for entry in "${targets[@]}"; do
	set -- $entry
	r=$1 py=$2 tag=$3 has_numpy=$4
	root=$ROOTS/$r
	iw=${inroot[$r]:-}
	[ -n "$iw" ] || continue
	if ! chroot "$root" "$py" -c pass 2>/dev/null; then
		echo "not ok - distros $tag: $py does not run in $root"
		continue
	fi
	export TM_CTHREADS_LIB=$iw/cthreads_loop.so

	# No single-stepped probe: every probe on an instruction the kernel
	# emulates (or, for the stub's report points, a 5-byte nop it turns
	# into a call), in both probe modes; entry mode probes every allocator.
	for mode in stub entry; do
		timeout "$TIMEOUT" ./tmbpf run -v --probe-mode $mode -- chroot "$root" "$py" \
			-c 'x = [bytes(10) for _ in range(100)]' > /dev/null 2> "$root$iw/$tag-$mode-v.err"
		nss=$(grep -c 'single-stepped' "$root$iw/$tag-$mode-v.err")
		nprobes=$(grep -cE '\((emulated|optimized)\)' "$root$iw/$tag-$mode-v.err")
		want=3
		[ $mode = entry ] && want=9
		if [ "$nss" -eq 0 ] && [ "$nprobes" -ge $want ]; then
			echo "ok - distros $tag: $mode mode: -v shows $nprobes probes, none single-stepped"
		else
			echo "not ok - distros $tag: $mode mode: $nss single-stepped probe(s) of $((nprobes + nss)):" \
				"$(grep -E 'single-stepped|tmbpf: run' "$root$iw/$tag-$mode-v.err" | head -3 | tr '\n' '|')"
		fi
	done

	progs=$programs
	[ "$has_numpy" = 1 ] && progs="$progs numpy_buffers.py"
	for prog in $progs; do
		name=${prog%.py}
		d=$iw/$tag-$name
		mkdir -p "$root$d"
		timeout "$TIMEOUT" chroot "$root" "$py" "$iw/$prog" > "$root$d/plain.out" 2>&1
		TM_ORACLE_OUT=$d/oracle.pickle timeout "$TIMEOUT" chroot "$root" "$py" -X tracemalloc=25 \
			"$iw/$prog" > "$root$d/oracle.out" 2>&1
		timeout "$TIMEOUT" ./tmbpf run --frames 25 -o "$root$d/tmbpf.pickle" -- chroot "$root" "$py" \
			"$iw/$prog" > "$root$d/tmbpf.out" 2> "$root$d/tmbpf.err"
		rc=$?
		if [ $rc -ne 0 ] || [ ! -s "$root$d/tmbpf.pickle" ]; then
			echo "not ok - distros $tag $name: tmbpf run exited $rc: $(tail -1 "$root$d/tmbpf.err")"
			continue
		fi
		if cmp -s "$root$d/plain.out" "$root$d/tmbpf.out"; then
			echo "ok - distros $tag $name: program output identical to an untraced run"
		else
			echo "not ok - distros $tag $name: program output differs from an untraced run"
		fi
		if [ "$name" = numpy_buffers ]; then
			res=$(chroot "$root" "$py" "$iw/compare_domain.py" "$d/tmbpf.pickle" "$d/oracle.pickle" 389047 2>&1)
			echo "$tag $name $(echo "$res" | head -1)" >> "$summary"
			if echo "$res" | head -1 | grep -q 'exact=yes'; then
				echo "ok - distros $tag numpy: $(echo "$res" | head -1)"
			else
				echo "not ok - distros $tag numpy: $(echo "$res" | head -1)"
				echo "$res" | tail -n +2 | sed 's/^/#  /'
			fi
		fi
		res=$(chroot "$root" "$py" "$iw/compare.py" "$d/tmbpf.pickle" "$d/oracle.pickle" "$iw" 2>&1)
		first=$(echo "$res" | head -1)
		echo "$tag $name $first" >> "$summary"
		agree=$(echo "$first" | sed -n 's/.*agreement=\([0-9.]*\).*/\1/p')
		if [ -n "$agree" ] && awk "BEGIN{exit !($agree >= $MIN_AGREEMENT)}" &&
			echo "$first" | grep -q 'top5=same'; then
			echo "ok - distros $tag $name: $first"
		else
			echo "not ok - distros $tag $name: $first"
			echo "$res" | tail -n +2 | sed 's/^/#  /'
		fi
		if grep -E '^tmbpf: drops: [1-9]' "$root$d/tmbpf.err" > /dev/null; then
			echo "# $tag $name: $(grep -E 'dropped|drops' "$root$d/tmbpf.err" | head -2 | tr '\n' ' ')"
		fi
	done
done
echo "# distro agreement per run: build/e2e-distro-summary.txt"

# A suite reports failures as "not ok" lines; reaching this line means it ran to its end.
exit 0
