#!/usr/bin/env bash
# Differential suite: CPython's tracemalloc is the oracle for tmbpf's snapshot
# library. Each installed CPython (pyenv 3.8-3.13, Debian's python3, and sid's
# 3.14 and 3.15 from the test roots of tools/test_roots.sh, run in their
# root) runs
# gen.py, which dumps random snapshots and writes CPython's own output for
# every statistics / compare_to / filter_traces combination; then
# `tmbpf stats|compare` must print the same bytes.
#   DIFF_SEED=N   another random seed (default 1)
#   TMBPF=PATH    the binary to test (default ./tmbpf)
#   DIFF_JOBS=N   interpreters run in parallel (default: number of CPUs)
# Prints one TAP-like line per interpreter and case family, and per-version
# counts as "#" lines.
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
TMBPF=${TMBPF:-$ROOT/tmbpf}
SEED=${DIFF_SEED:-1}
PYROOT=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
JSONPY=/usr/bin/python3

if [ ! -x "$TMBPF" ]; then
	echo "not ok - diff: $TMBPF is missing (run make)"
	exit 1
fi

# A private folder per run (concurrent runs must not share files), kept
# only when something failed; and a private copy of the binary, which a
# rebuild during the run must not change.
mkdir -p "$ROOT/build/diff"
OUT=$(mktemp -d "$ROOT/build/diff/run.XXXXXX") || exit 1
cp "$TMBPF" "$OUT/.tmbpf" && TMBPF=$OUT/.tmbpf

pythons=()
for v in 8 9 10 11 12 13; do
	for p in "$PYROOT"/versions/3.$v.*/bin/python3.$v; do
		[ -x "$p" ] && pythons+=("$p")
	done
done
[ -x /usr/bin/python3 ] && pythons+=(/usr/bin/python3)
if [ ${#pythons[@]} -eq 0 ]; then
	echo "skip - diff: no CPython found under $PYROOT/versions or /usr/bin"
	rm -rf "$OUT"
	exit 0
fi
[ -x "$JSONPY" ] || JSONPY=${pythons[0]}
# The newest CPythons, from the test roots (tools/test_roots.sh). Their
# Lib/tracemalloc.py is byte-identical to 3.12's and to Debian 3.13's (md5
# 7767e900...), so 3.14 and 3.15 stand for the other distribution builds.
TROOTS=${TMBPF_ROOTS:-/var/cache/tmbpf-test}
for spec in sid:python3.14 sid:python3.15; do
	r=$TROOTS/${spec%%:*}
	if [ -s "$r/VERSIONS" ] && chroot "$r" "${spec#*:}" -c pass 2>/dev/null; then
		pythons+=("chroot:$r:${spec#*:}")
	else
		echo "skip - diff ${spec%%:*}-${spec#*:}: not in the test roots (tools/test_roots.sh builds them)"
	fi
done

# run_cases DIR TAG: run every case of DIR/cases.tsv, print one line per family.
run_cases() {
	local dir=$1 tag=$2 kind name rc exp got_rc fam
	local -A total=() bad=() first=()
	local -a f args
	local got=$dir/.got err=$dir/.err

	while IFS=$'\x1f' read -r -a f; do
		kind=${f[0]} name=${f[1]} rc=${f[2]} exp=${f[3]}
		args=("${f[@]:4:${#f[@]}-5}")
		fam=${name%%-*}
		total[$fam]=$(( ${total[$fam]:-0} + 1 ))
		(cd "$dir" && "$TMBPF" "${args[@]}" >"$got" 2>"$err")
		got_rc=$?
		if [ "$kind" = json ] && [ "$got_rc" -eq 0 ]; then
			"$JSONPY" "$ROOT/tests/diff/json_text.py" "$got" >"$got.txt" 2>>"$err" || got_rc=99
			mv "$got.txt" "$got"
		fi
		if [ "$got_rc" != "$rc" ] || ! cmp -s "$got" "$dir/$exp"; then
			bad[$fam]=$(( ${bad[$fam]:-0} + 1 ))
			if [ -z "${first[$fam]:-}" ]; then
				first[$fam]="$name (exit $got_rc, want $rc)"
				cp "$got" "$dir/$exp.got"
				printf "#   %s %s: tmbpf %.300s\n" "$tag" "$name" "${args[*]}"
				diff "$dir/$exp" "$got" | head -5 | sed 's/^/#     /'
				head -2 "$err" | sed 's/^/#     stderr: /'
			fi
		fi
	done <"$dir/cases.tsv"

	local n=0 nbad=0
	for fam in $(printf '%s\n' "${!total[@]}" | sort); do
		n=$((n + total[$fam]))
		nbad=$((nbad + ${bad[$fam]:-0}))
		if [ "${bad[$fam]:-0}" -eq 0 ]; then
			echo "ok - diff $tag $fam: ${total[$fam]} cases byte-identical"
		else
			echo "not ok - diff $tag $fam: ${bad[$fam]} of ${total[$fam]} differ, first ${first[$fam]}"
		fi
	done
	echo "# diff $tag: $n cases, $nbad mismatches"
}

# check_cli NAME WANT_RC ARGS...: exit code, nothing on stdout, one stderr line.
check_cli() {
	local name=$1 want=$2 got
	shift 2
	"$TMBPF" "$@" >"$OUT/.cli.out" 2>"$OUT/.cli.err"
	got=$?
	if [ "$got" -eq "$want" ] && [ ! -s "$OUT/.cli.out" ] && [ "$(wc -l <"$OUT/.cli.err")" -eq 1 ]; then
		echo "ok - diff cli: $name"
	else
		echo "not ok - diff cli: $name: exit $got (want $want), stderr: $(head -c 200 "$OUT/.cli.err")"
		rc=1
	fi
}

rc=0
printf 'not a snapshot\n' >"$OUT/.garbage"
check_cli "missing file exits 1" 1 stats "$OUT/.no-such-file"
check_cli "garbage file exits 1" 1 stats "$OUT/.garbage"
check_cli "compare with a missing NEW exits 1" 1 compare "$OUT/.garbage" "$OUT/.no-such-file"
check_cli "unknown option exits 2" 2 stats x --bogus
check_cli "bad --key exits 2" 2 stats x --key lines
check_cli "negative --limit exits 2" 2 stats x --limit -1
check_cli "--limit needs a value" 2 stats x --limit
check_cli "bad --domain exits 2" 2 stats x --domain -3
check_cli "cumulative traceback exits 2" 2 stats x --key traceback --cumulative
check_cli "compare needs two files" 2 compare x
check_cli "stats takes one file" 2 stats x y
if grep -q "$OUT/.no-such-file" <("$TMBPF" stats "$OUT/.no-such-file" 2>&1); then
	echo "ok - diff cli: the error names the file"
else
	echo "not ok - diff cli: the error does not name the file"
	rc=1
fi

# run_python PY DIR: generate the cases with PY, run them; output in DIR/.result.
# PY "chroot:ROOTDIR:pythonX.Y" runs in that root, writing into a directory
# of ours that has the same path inside the root and on the host (a bind
# mount in a mount namespace of its own): the snapshots name source files
# that `tmbpf stats --traceback` then reads from the host, as tracemalloc's
# Traceback.format() did in the root.
run_python() {
	local py=$1 dir=$2 tag=${2##*/} gdir=$2 root= ipy= w
	mkdir -p "$dir"
	if [ "${py#chroot:}" != "$py" ]; then
		root=${py#chroot:}
		ipy=${root##*:}
		root=${root%:*}
		w=$(mktemp -d /tmp/tmbpf-diff.XXXXXX) && mkdir "$root$w" || {
			echo "not ok - diff $tag: cannot make a directory in /tmp and $root/tmp" >"$dir/.result"
			return
		}
		cp "$ROOT/tests/diff/gen.py" "$w/"
		gdir=$w/out
		unshare --mount --propagation private sh -c 'mount --bind "$1" "$2$1" &&
			exec chroot "$2" "$3" "$1/gen.py" "$1/out" "$4"' sh "$w" "$root" "$ipy" "$SEED" \
			>"$dir/.gen.log" 2>&1
	else
		"$py" "$ROOT/tests/diff/gen.py" "$dir" "$SEED" >"$dir/.gen.log" 2>&1
	fi
	if [ $? -ne 0 ]; then
		echo "not ok - diff $tag: gen.py failed: $(tail -1 "$dir/.gen.log")" >"$dir/.result"
	else
		run_cases "$gdir" "$tag" >"$dir/.result"
	fi
	if [ -n "$root" ]; then
		grep -q '^not ok' "$dir/.result" && cp -r "$gdir/." "$dir/" # kept for a look
		rm -rf "$w"
		rmdir "$root$w"
	fi
}

# Interpreters run JOBS at a time (default: the number of CPUs); results are
# printed in a fixed order.
JOBS=${DIFF_JOBS:-$(nproc 2>/dev/null || echo 2)}
dirs=()
for py in "${pythons[@]}"; do
	if [ "${py#chroot:}" != "$py" ]; then
		r=${py#chroot:}
		ver=$(chroot "${r%:*}" "${r##*:}" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null) || ver=unknown
		tag="$(basename "${r%:*}")-$ver"
		[ "${r##*:}" = python3.14d ] && tag="$tag-dbg"
	else
		ver=$("$py" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null) || ver=unknown
		tag=$ver
		[ "$py" = /usr/bin/python3 ] && tag="debian-$ver"
	fi
	dirs+=("$OUT/$tag")
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do
		wait -n
	done
	run_python "$py" "$OUT/$tag" &
done
wait
for dir in "${dirs[@]}"; do
	cat "$dir/.result"
	grep -q '^not ok' "$dir/.result" && rc=1
done
if [ "$rc" -eq 0 ]; then
	rm -rf "$OUT"
else
	echo "# diff: inputs, expected and actual output kept in $OUT"
fi
exit $rc
