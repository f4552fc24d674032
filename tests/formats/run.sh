#!/usr/bin/env bash
# Round trips between tracemalloc pickles and tmbpf's file formats, with
# CPython's own tracemalloc as the oracle. For every installed CPython
# (pyenv 3.8-3.13 and Debian's python3) and those of the Debian test roots
# (tools/test_roots.sh: sid 3.13, 3.14, 3.15, 3.14-dbg and trixie 3.13, run
# in their root, so that their own Snapshot.load reads what tmbpf wrote):
#   Snapshot.dump() pickles (tests/formats/gen.py) -> tmbpf convert -> native
#   -> tmbpf convert -> pickle -> Snapshot.load() gives the same statistics
#   (tests/formats/stats.py: lineno/filename/traceback, cumulative too) as the
#   original; pickle -> pickle directly too; JSON export parses and agrees.
# Then corrupt and truncated files must give exit 1 and exactly one line.
# Pickles tmbpf writes hold 4-tuples, which only 3.9+ loads: the 3.8 files'
# conversions are checked with a 3.9+ interpreter.
# Prints "ok - NAME", "not ok - NAME: why", "skip - NAME: why".
cd "$(dirname "$0")/../.." || exit 1
TMBPF=${TMBPF:-./tmbpf}
PYENV_ROOT=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
here=tests/formats
rc=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

ok() { echo "ok - formats: $1"; }
fail() { echo "not ok - formats: $1: $2"; rc=1; }

if [ ! -x "$TMBPF" ]; then
	echo "skip - formats: $TMBPF is not built (run make)"
	exit 0
fi

pythons=()
for d in "$PYENV_ROOT"/versions/3.{8,9,10,11,12,13}.*; do
	[ -x "$d/bin/python3" ] && pythons+=("$d/bin/python3")
done
[ -x /usr/bin/python3 ] && pythons+=(/usr/bin/python3)
if [ ${#pythons[@]} -eq 0 ]; then
	echo "skip - formats: no CPython 3.8-3.13 found (pyenv root $PYENV_ROOT)"
	exit 0
fi

# pyx PY ARGS...: run PY; "chroot:ROOT:pythonX.Y" runs in ROOT, every
# argument under ROOT passed as the root sees it.
pyx() {
	local py=$1 r ipy a=()
	shift
	if [ "${py#chroot:}" = "$py" ]; then
		"$py" "$@"
		return
	fi
	r=${py#chroot:}
	ipy=${r##*:}
	r=${r%:*}
	for x in "$@"; do a+=("${x#"$r"}"); done
	chroot "$r" "$ipy" "${a[@]}"
}
pyver() { pyx "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'; }

TROOTS=${TMBPF_ROOTS:-/var/cache/tmbpf-test}
for spec in sid:python3.13 sid:python3.14 sid:python3.15 sid:python3.14d trixie:python3.13; do
	r=$TROOTS/${spec%%:*}
	if [ -s "$r/VERSIONS" ] && chroot "$r" "${spec#*:}" -c pass 2>/dev/null; then
		pythons+=("chroot:$r:${spec#*:}")
	else
		echo "skip - formats ${spec%%:*}-${spec#*:}: not in the test roots (tools/test_roots.sh builds them)"
	fi
done
rootdirs=()
trap 'rm -rf "$work" "${rootdirs[@]}"' EXIT

# A 3.9+ interpreter for pickles with 4-tuples.
loader39=
for py in "${pythons[@]}"; do
	[ "${py#chroot:}" != "$py" ] && continue
	v=$(pyver "$py")
	[ "${v#3.}" -ge 9 ] && loader39=$py
done

# One line on stderr, exit 1, naming the file.
expect_one_line_error() {
	local name=$1 file=$2 out=$3 err lines status
	"$TMBPF" convert "$file" "$out" 2> "$work/err" >/dev/null
	status=$?
	lines=$(wc -l < "$work/err")
	err=$(head -1 "$work/err")
	if [ "$status" -eq 1 ] && [ "$lines" -eq 1 ] && [[ $err == "tmbpf: $file: "* ]]; then
		ok "$name: exit 1, one line ($err)"
	else
		fail "$name" "exit $status, $lines lines: $err"
	fi
}

check_version() {
	local py=$1 v dir loader f base
	local scripts=$here r
	v=$(pyver "$py") || { fail "$py" "does not run"; return; }
	if [ "${py#chroot:}" != "$py" ]; then
		r=${py#chroot:}
		dir=$(mktemp -d "${r%:*}/tmp/tmbpf-formats.XXXXXX") || { fail "$py" "cannot write in its root"; return; }
		rootdirs+=("$dir")
		cp $here/gen.py $here/stats.py "$dir/"
		scripts=$dir
		v="$(basename "${r%:*}")-${r##*:}"
	else
		dir=$work/$v-$(basename "$(dirname "$(dirname "$py")")")
		mkdir -p "$dir"
	fi
	if ! pyx "$py" $scripts/gen.py "$dir" 2> "$dir/gen.err"; then
		fail "$v: Snapshot.dump()" "$(tail -1 "$dir/gen.err")"
		return
	fi
	loader=$py
	case $v in 3.*) [ "${v#3.}" -lt 9 ] && loader=$loader39 ;; esac
	if [ -z "$loader" ]; then
		echo "skip - formats: $v: no CPython 3.9+ to load converted pickles"
		return
	fi
	for f in "$dir"/*.pickle; do
		base=${f%.pickle}
		name="$v $(basename "$base")"
		pyx "$py" $scripts/stats.py "$f" > "$base.want" 2> "$base.err" ||
			{ fail "$name" "CPython cannot read its own dump: $(tail -1 "$base.err")"; continue; }
		if ! "$TMBPF" convert "$f" "$base.tmbpf" 2> "$base.err" ||
		   ! "$TMBPF" convert "$base.tmbpf" "$base.rt.pickle" 2>> "$base.err"; then
			fail "$name: pickle -> native -> pickle" "$(tail -1 "$base.err")"
			continue
		fi
		if pyx "$loader" $scripts/stats.py "$base.rt.pickle" > "$base.got" 2> "$base.err" &&
		   cmp -s "$base.want" "$base.got"; then
			ok "$name: pickle -> native -> pickle: Snapshot.load() gives identical statistics"
		else
			fail "$name: pickle -> native -> pickle" "statistics differ or load failed: $(tail -1 "$base.err")"
		fi
		if "$TMBPF" convert "$f" "$base.direct.pickle" 2> "$base.err" &&
		   pyx "$loader" $scripts/stats.py "$base.direct.pickle" > "$base.got2" 2>> "$base.err" &&
		   cmp -s "$base.want" "$base.got2"; then
			ok "$name: pickle -> pickle: identical statistics"
		else
			fail "$name: pickle -> pickle" "statistics differ: $(tail -1 "$base.err")"
		fi
		if "$TMBPF" convert "$base.tmbpf" "$base.json" 2> "$base.err" &&
		   pyx "$py" -c 'import json, sys, tracemalloc
doc = json.load(open(sys.argv[1]))
snap = tracemalloc.Snapshot.load(sys.argv[2])
assert doc["trace_count"] == len(doc["traces"]) == len(snap.traces._traces)
tbs = doc["tracebacks"]
for t, raw in zip(doc["traces"], snap.traces._traces):
    assert (t["domain"], t["size"]) == raw[:2], (t, raw)
    assert [tuple(f) for f in tbs[t["traceback"]]] == list(raw[2]), (t, raw)' "$base.json" "$f" 2>> "$base.err"; then
			ok "$name: native -> JSON parses and matches the pickle"
		else
			fail "$name: native -> JSON" "$(tail -1 "$base.err")"
		fi
	done
}

for py in "${pythons[@]}"; do
	check_version "$py"
done

# Corrupt and hostile inputs, from the last version's synth files.
src=$(ls -d "$work"/*/ | tail -1)
if [ -f "$src/synth.tmbpf" ]; then
	n=$(stat -c %s "$src/synth.tmbpf")
	head -c $((n / 2)) "$src/synth.tmbpf" > "$work/trunc.tmbpf"
	expect_one_line_error "truncated native file" "$work/trunc.tmbpf" "$work/x.pickle"
	cp "$src/synth.tmbpf" "$work/flip.tmbpf"
	printf '\x55' | dd of="$work/flip.tmbpf" bs=1 seek=$((n / 2)) conv=notrunc status=none
	expect_one_line_error "corrupted native file" "$work/flip.tmbpf" "$work/x.pickle"
	n=$(stat -c %s "$src/synth.pickle")
	head -c $((n - 3)) "$src/synth.pickle" > "$work/trunc.pickle"
	expect_one_line_error "truncated pickle" "$work/trunc.pickle" "$work/x.tmbpf"
	printf '\x80\x05cos\nsystem\n.' > "$work/evil.pickle"
	expect_one_line_error "pickle of another class" "$work/evil.pickle" "$work/x.tmbpf"
	echo "not a snapshot" > "$work/text.pickle"
	expect_one_line_error "text file" "$work/text.pickle" "$work/x.tmbpf"
	expect_one_line_error "missing file" "$work/missing.pickle" "$work/x.tmbpf"
	[ ! -e "$work/x.tmbpf" ] && [ ! -e "$work/x.pickle" ] &&
		ok "failed conversions leave no output file" ||
		fail "failed conversions" "left an output file behind"
	"$TMBPF" convert "$src/synth.pickle" 2>/dev/null
	[ $? -eq 2 ] && ok "convert with one argument: usage error, exit 2" ||
		fail "convert with one argument" "exit is not 2"
	"$TMBPF" convert "$src/synth.pickle" "$work/y" --format yaml 2>/dev/null
	[ $? -eq 2 ] && ok "convert --format yaml: usage error, exit 2" ||
		fail "convert --format yaml" "exit is not 2"
	"$TMBPF" convert "$src/synth.pickle" "$work/y.out" --format pickle 2>/dev/null &&
		[ "$(head -c 2 "$work/y.out" | od -An -tx1 | tr -d ' ')" = 8004 ] &&
		ok "convert --format pickle beats the extension" ||
		fail "convert --format pickle" "did not write a pickle"
	if "$TMBPF" info "$src/synth.tmbpf" > "$work/info" 2>&1 &&
	   grep -q '^format: *native (version 1)' "$work/info" &&
	   grep -q '^traces: *300' "$work/info"; then
		ok "info shows format, version and counts"
	else
		fail "info" "$(head -3 "$work/info" | tr '\n' ' ')"
	fi
fi
exit $rc
