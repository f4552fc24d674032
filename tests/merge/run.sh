#!/usr/bin/env bash
# tmbpf merge and cross-version compare, with CPython's tracemalloc as the
# oracle (tests/merge/oracle.py). Every installed pyenv CPython 3.8-3.13 dumps
# the same workload (the same lines, other amounts and traceback limits),
# plus random traces; some parts become native files (tmbpf convert, and
# tests/merge/native_write.py for what only live captures carry: function
# names, differing per part on the same lines, metadata, sampling). Then:
#   tmbpf stats of `tmbpf merge PARTS -o M` (native and pickle M) prints the
#     bytes CPython prints for Snapshot(union of the parts' traces, max limit)
#     for every key (lineno, filename, traceback; cumulative too), and
#     CPython's own Snapshot.load(M.pickle) agrees;
#   tmbpf compare of M against a part, and of parts of different versions and
#     formats, prints CPython's compare_to text (names never split a line);
#   M's metadata (traceback_limit, the joined host and version strings, the
#     sample interval); sampled parts at one interval merge into the
#     estimates of the union's samples;
#   errors: corrupt, missing and mixed sampled/full inputs, different sample
#     intervals, an unwritable -o (found before any input is read), no
#     inputs, no -o: one line, the right exit status, no OUT created, an
#     existing OUT left as it was; OUT is mode 0600.
# Prints "ok - merge: NAME", "not ok - merge: NAME: why", "skip - merge: ...".
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
TMBPF=${TMBPF:-$ROOT/tmbpf}
PYROOT=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
ORACLE=$ROOT/tests/merge/oracle.py
NATIVE=$ROOT/tests/merge/native_write.py
rc=0
work=$(mktemp -d /tmp/tmbpf-merge.XXXXXX) || exit 1
trap 'rm -rf "$work"' EXIT

ok() { echo "ok - merge: $1"; }
fail() { echo "not ok - merge: $1: $2"; rc=1; }

if [ ! -x "$TMBPF" ]; then
	echo "not ok - merge: $TMBPF is missing (run make)"
	exit 1
fi

declare -A py=()
for v in 8 9 10 11 12 13; do
	for p in "$PYROOT"/versions/3.$v.*/bin/python3.$v; do
		[ -x "$p" ] && py[3.$v]=$p
	done
done
# The oracle: 3.12's Lib/tracemalloc.py is the text tmbpf mirrors.
ORPY=${py[3.12]:-${py[3.13]:-}}
if [ -z "$ORPY" ] || [ ${#py[@]} -lt 2 ]; then
	if [ "${CI:-}" = true ]; then
		echo "not ok - merge: needs CPython 3.12 or 3.13 and another pyenv CPython (root $PYROOT)"
		exit 1
	fi
	echo "skip - merge: needs CPython 3.12 or 3.13 and another pyenv CPython (root $PYROOT)"
	exit 0
fi
versions=$(printf '%s\n' "${!py[@]}" | sort -V)

# ---- the parts ---------------------------------------------------------------
n=1
declare -A limit=()
pickles=()
for v in $versions; do
	limit[$v]=$(( (n * 7) % 12 + 1 ))
	if ! "${py[$v]}" "$ORACLE" workload "$work/part-$v.pickle" "${limit[$v]}" "$n" 2>"$work/err"; then
		fail "CPython $v workload" "$(head -2 "$work/err")"
		continue
	fi
	pickles+=("$work/part-$v.pickle")
	n=$((n + 1))
done
"$ORPY" "$ORACLE" synth "$work/synth.pickle" 7 && pickles+=("$work/synth.pickle")
echo "# merge: parts ${pickles[*]##*/}"

# Inputs of several formats: the first part stays a pickle, the second and
# third become native files with function names (other names on the same
# lines), the others native through tmbpf convert, synth stays a pickle.
inputs=()
i=0
for p in "${pickles[@]}"; do
	b=${p%.pickle}
	case $i in
	1) "$ORPY" "$NATIVE" "$p" "$b.tmbpf" --names A --host web-1 --python 3.x.a --pid 11 && inputs+=("$b.tmbpf") ;;
	2) "$ORPY" "$NATIVE" "$p" "$b.tmbpf" --names B --host web-2 --pid 12 --drop lost=2 && inputs+=("$b.tmbpf") ;;
	*) if [ "$p" = "$work/synth.pickle" ] || [ $i -eq 0 ]; then
		inputs+=("$p")
	   else
		"$TMBPF" convert "$p" "$b.tmbpf" 2>/dev/null && inputs+=("$b.tmbpf")
	   fi ;;
	esac
	i=$((i + 1))
done

M=$work/merged.tmbpf
MP=$work/merged.pickle
if "$TMBPF" merge "${inputs[@]}" -o "$M" 2>"$work/err" && "$TMBPF" merge -o "$MP" "${inputs[@]}" 2>>"$work/err"; then
	ok "merged ${#inputs[@]} files ($(printf '%s\n' "${inputs[@]}" | grep -c '\.tmbpf$') native, the others pickles) into native and pickle"
else
	fail "merge" "$(head -3 "$work/err" | tr '\n' '|')"
	exit 1
fi

# ---- statistics of the merge = CPython's statistics of the union ------------
keys=("lineno 0" "filename 0" "traceback 0" "lineno 1" "filename 1")
same() { # NAME WANT GOT
	if cmp -s "$2" "$3"; then
		ok "$1 ($(wc -l < "$2") lines byte-identical)"
	else
		fail "$1" "$(diff "$2" "$3" | head -4 | tr '\n' '|')"
	fi
}
for k in "${keys[@]}"; do
	key=${k% *} c=${k#* } cum=()
	[ "$c" = 1 ] && cum=(--cumulative)
	"$ORPY" "$ORACLE" stats "$key" "$c" "${pickles[@]}" > "$work/want"
	for m in "$M" "$MP"; do
		"$TMBPF" stats "$m" --key "$key" "${cum[@]}" --limit 0 > "$work/got" 2>/dev/null
		same "stats ${m##*/} --key $key${cum[*]:+ --cumulative} = CPython's union" "$work/want" "$work/got"
	done
	"$ORPY" "$ORACLE" stats "$key" "$c" "$MP" > "$work/got"
	same "CPython's Snapshot.load(merged.pickle) --key $key${cum[*]:+ --cumulative} = the union" "$work/want" "$work/got"
done

# ---- compare: the merge against a part, and across versions and formats -----
cmp_case() { # NAME OLD NEW OLD_PICKLES... -- NEW_PICKLES...
	local name=$1 old=$2 new=$3 k key c cum
	shift 3
	for k in "${keys[@]}"; do
		key=${k% *} c=${k#* } cum=()
		[ "$c" = 1 ] && cum=(--cumulative)
		"$ORPY" "$ORACLE" compare "$key" "$c" "$@" > "$work/want"
		"$TMBPF" compare "$old" "$new" --key "$key" "${cum[@]}" --limit 0 > "$work/got" 2>/dev/null
		same "compare $name --key $key${cum[*]:+ --cumulative} = CPython's compare_to" "$work/want" "$work/got"
	done
}
v1=$(echo "$versions" | sed -n 1p)
v2=$(echo "$versions" | sed -n 2p)
v3=$(echo "$versions" | sed -n 3p)
cmp_case "part-$v1.pickle merged.tmbpf" "${inputs[0]}" "$M" "${pickles[0]}" -- "${pickles[@]}"
cmp_case "part-$v1.pickle (CPython $v1) part-$v2.tmbpf (CPython $v2, names A)" \
	"${inputs[0]}" "${inputs[1]}" "${pickles[0]}" -- "${pickles[1]}"
if [ -n "$v3" ]; then
	cmp_case "part-$v3.tmbpf (names B) part-$v2.tmbpf (names A)" \
		"${inputs[2]}" "${inputs[1]}" "${pickles[2]}" -- "${pickles[1]}"
fi
# The same traces, other function names on every line: nothing differs.
"$ORPY" "$NATIVE" "${pickles[1]}" "$work/renamed.tmbpf" --names Z
cmp_case "part-$v2 names A, the same with names Z" "${inputs[1]}" "$work/renamed.tmbpf" \
	"${pickles[1]}" -- "${pickles[1]}"
if "$TMBPF" compare "${inputs[1]}" "$work/renamed.tmbpf" --key lineno --limit 0 2>/dev/null |
	grep -qv '(+0 B), count=[0-9]* (+0)'; then
	fail "names split a line" "a diff is not zero"
else
	ok "other function names on the same lines: every diff is +0"
fi
# With Traceback.format() (the workload's source file is there to read).
"$ORPY" "$ORACLE" compare traceback 0 --traceback "${pickles[0]}" -- "${pickles[@]}" > "$work/want"
"$TMBPF" compare "${inputs[0]}" "$M" --key traceback --traceback --limit 0 > "$work/got" 2>/dev/null
same "compare --key traceback --traceback = CPython's compare_to and Traceback.format()" "$work/want" "$work/got"

# ---- metadata ----------------------------------------------------------------
maxlim=1
for v in $versions; do [ "${limit[$v]}" -gt "$maxlim" ] && maxlim=${limit[$v]}; done
[ "$maxlim" -lt 6 ] && maxlim=6 # synth's
if "$TMBPF" info "$M" --json > "$work/info.json" && /usr/bin/python3 - "$work/info.json" "$maxlim" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
m = d["meta"]
assert d["traceback_limit"] == int(sys.argv[2]), (d["traceback_limit"], sys.argv[2])
assert m["hostname"] == "? | web-1 | web-2", m["hostname"]
assert m["python_version"] == "? | 3.x.a", m["python_version"]
assert m["pid"] in (None, -1), m["pid"]
assert m["drops"] == {"lost": 2}, m["drops"]
assert m["sample_interval_bytes"] == 0, m
EOF
then
	ok "metadata: traceback_limit the max ($maxlim), hosts and versions joined, pid unknown, drops summed"
else
	fail "metadata" "$(cat "$work/info.json" | head -c 400)"
fi
mode=$(stat -c %a "$M")
[ "$mode" = 600 ] && ok "OUT is mode 0600" || fail "OUT mode" "$mode"

# ---- sampled parts -------------------------------------------------------------
"$ORPY" "$NATIVE" "${pickles[0]}" "$work/s1.tmbpf" --sample 4096
"$ORPY" "$NATIVE" "${pickles[1]}" "$work/s2.tmbpf" --sample 4096 --names A
"$ORPY" "$NATIVE" "${pickles[1]}" "$work/s3.tmbpf" --sample 8192
"$ORPY" "$ORACLE" union "$work/u12.pickle" "${pickles[0]}" "${pickles[1]}"
"$ORPY" "$NATIVE" "$work/u12.pickle" "$work/u12s.tmbpf" --sample 4096
if "$TMBPF" merge "$work/s1.tmbpf" "$work/s2.tmbpf" -o "$work/sm.tmbpf" 2>"$work/err"; then
	for k in "${keys[@]}"; do
		key=${k% *} c=${k#* } cum=()
		[ "$c" = 1 ] && cum=(--cumulative)
		"$TMBPF" stats "$work/u12s.tmbpf" --key "$key" "${cum[@]}" --limit 0 > "$work/want" 2>/dev/null
		"$TMBPF" stats "$work/sm.tmbpf" --key "$key" "${cum[@]}" --limit 0 > "$work/got" 2>/dev/null
		same "sampled parts, one interval: --key $key${cum[*]:+ --cumulative} = the estimates of the union's samples" "$work/want" "$work/got"
	done
	"$TMBPF" info "$work/sm.tmbpf" --json | /usr/bin/python3 -c 'import json,sys; assert json.load(sys.stdin)["meta"]["sample_interval_bytes"] == 4096' &&
		ok "a merge of sampled parts stays sampled (interval 4096)" || fail "sampled merge" "interval lost"
else
	fail "sampled parts at one interval" "$(cat "$work/err")"
fi

# ---- errors ----------------------------------------------------------------------
# err_case NAME WANT_RC WANT_IN_ERR OUT ARGS...: exit status, exactly one line
# naming what failed, nothing on stdout, OUT not created (or left as it was).
err_case() {
	local name=$1 want=$2 what=$3 out=$4 got before=
	shift 4
	[ -f "$out" ] && before=$(md5sum < "$out")
	"$TMBPF" merge "$@" -o "$out" > "$work/out" 2> "$work/err"
	got=$?
	if [ "$got" -ne "$want" ]; then
		fail "$name" "exit $got (want $want): $(head -2 "$work/err" | tr '\n' '|')"
	elif [ "$(wc -l < "$work/err")" -ne 1 ] || [ -s "$work/out" ]; then
		fail "$name" "not one line: $(head -3 "$work/err" | tr '\n' '|')"
	elif ! grep -qF -- "$what" "$work/err"; then
		fail "$name" "does not name $what: $(cat "$work/err")"
	elif [ -n "$before" ] && [ "$before" != "$(md5sum < "$out")" ]; then
		fail "$name" "the existing $out was changed"
	elif [ -z "$before" ] && [ -e "$out" ] && [ ! -d "$out" ]; then
		fail "$name" "$out was created"
	elif ls -a "$(dirname "$out")" 2>/dev/null | grep -q '\.tmp\.'; then
		fail "$name" "a temporary file was left behind"
	else
		ok "$name: exit $got, $(cut -c1-110 "$work/err")"
	fi
}
mkdir -p "$work/e"
printf 'not a snapshot\n' > "$work/garbage.pickle"
head -c 200 "${pickles[1]}" > "$work/truncated.pickle"
printf 'keep me' > "$work/e/existing.tmbpf"
err_case "corrupt input" 1 "$work/garbage.pickle" "$work/e/o1.tmbpf" "${inputs[0]}" "$work/garbage.pickle"
err_case "truncated pickle" 1 "$work/truncated.pickle" "$work/e/o2.tmbpf" "$work/truncated.pickle" "${inputs[0]}"
err_case "missing input" 1 "$work/no-such.pickle" "$work/e/o3.tmbpf" "${inputs[0]}" "$work/no-such.pickle"
err_case "a failed merge leaves an existing OUT alone" 1 "$work/garbage.pickle" "$work/e/existing.tmbpf" \
	"${inputs[0]}" "$work/garbage.pickle"
err_case "sampled after full refused" 1 "$work/s1.tmbpf" "$work/e/o4.tmbpf" "${inputs[0]}" "$work/s1.tmbpf"
err_case "full after sampled refused" 1 "${inputs[0]}" "$work/e/o5.tmbpf" "$work/s1.tmbpf" "${inputs[0]}"
err_case "different sample intervals refused" 1 "$work/s3.tmbpf" "$work/e/o6.tmbpf" "$work/s1.tmbpf" "$work/s3.tmbpf"
err_case "unwritable -o (no such directory), before any input is read" 1 "$work/nodir/o.tmbpf" \
	"$work/nodir/o.tmbpf" "$work/no-such.pickle"
if [ "$(id -u)" -ne 0 ]; then
	mkdir -p "$work/ro" && chmod 555 "$work/ro"
	err_case "unwritable -o (read-only directory)" 1 "$work/ro/o.tmbpf" "$work/ro/o.tmbpf" "${inputs[0]}"
fi
err_case "an -o that is a directory" 1 "$work/e" "$work/e" "${inputs[0]}"
# Usage errors: exit 2.
"$TMBPF" merge -o "$work/e/u.tmbpf" > /dev/null 2> "$work/err"
[ $? -eq 2 ] && [ ! -e "$work/e/u.tmbpf" ] && ok "no inputs: exit 2" || fail "no inputs" "$(cat "$work/err")"
"$TMBPF" merge "${inputs[0]}" > /dev/null 2> "$work/err"
[ $? -eq 2 ] && grep -q -- "-o FILE is required" "$work/err" && ok "no -o: exit 2, said" || fail "no -o" "$(cat "$work/err")"
"$TMBPF" merge "${inputs[0]}" -o "$work/e/u.tmbpf" --format nope > /dev/null 2> "$work/err"
[ $? -eq 2 ] && [ ! -e "$work/e/u.tmbpf" ] && ok "unknown --format: exit 2" || fail "--format nope" "$(cat "$work/err")"
exit $rc
