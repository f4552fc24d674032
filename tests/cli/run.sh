#!/usr/bin/env bash
# The command line as its neighbours behave (no root needed): every
# command's --help lists exactly the options of its table (tmbpf
# --dump-options), unknown and inapplicable options are refused with the
# command's name, --version, info --json, the man page and the completion
# are in sync with the tables, make install installs three files, outputs
# are checked before the work and written 0600, FIFOs are refused, and
# tmbpf run's exit statuses.
set -u
cd "$(dirname "$0")/../.." || exit 1
T=./tmbpf
work=$(mktemp -d /tmp/tmbpf-cli.XXXXXX)
trap 'rm -rf "$work"' EXIT
PY=$(command -v python3)

ok() { echo "ok - cli: $*"; }
nok() { echo "not ok - cli: $*"; }
check() { # check NAME CMD...: the command succeeds
	local name=$1; shift
	if "$@" > "$work/out" 2> "$work/err"; then ok "$name"; else nok "$name: $(head -3 "$work/err" | tr '\n' '|')"; fi
}

$T --dump-options > "$work/dump" || { nok "--dump-options failed"; exit 0; }
commands=$(awk -F'\t' '$1 == "command" { print $2 }' "$work/dump")

# --help: exit 0, and the options it lists are exactly the table's.
for c in $commands; do
	$T "$c" --help > "$work/help" 2> "$work/err"
	rc=$?
	grep -oE '^ +(-[a-zA-Z], )?--[a-z][a-z-]*' "$work/help" | sed 's/.*--//' | sort > "$work/listed"
	awk -F'\t' -v c="$c" '$1 == "option" && $2 == c { print $3 }' "$work/dump" | sort > "$work/table"
	if [ $rc -eq 0 ] && [ ! -s "$work/err" ] && diff -q "$work/listed" "$work/table" > /dev/null; then
		ok "$c --help exits 0 and lists its $(wc -l < "$work/table") options"
	else
		nok "$c --help: exit $rc, differs from the table: $(diff "$work/listed" "$work/table" | tr '\n' ' ')"
	fi
	# Every option of the table is accepted by the parser (value or not):
	# a usage error would name the option.
	$T "$c" --bogus-option > /dev/null 2> "$work/err"
	rc=$?
	if [ $rc -eq 2 ] || { [ "$c" = run ] && [ $rc -eq 125 ]; }; then
		if grep -q "^tmbpf $c: unknown option '--bogus-option'" "$work/err"; then
			ok "$c: unknown option refused with the command's name (exit $rc)"
		else
			nok "$c: unknown option: $(cat "$work/err")"
		fi
	else
		nok "$c: unknown option: exit $rc"
	fi
done
[ -z "$($T top --help | grep -- --duration)" ] && ok "top's help has no --duration" || nok "top lists --duration"

# Options of another command are refused, naming the command.
inapplicable() { # CMD OPTION...
	local c=$1; shift
	$T "$c" "$@" > /dev/null 2> "$work/err"
	local rc=$?
	if [ $rc -ne 0 ] && grep -q "^tmbpf $c: unknown option" "$work/err"; then
		ok "$c $*: refused"
	else
		nok "$c $*: exit $rc: $(cat "$work/err")"
	fi
}
inapplicable snapshot --interval 3
inapplicable snapshot --reset-peak
inapplicable stats --frames 3
inapplicable top --duration 3
inapplicable info --limit 3
inapplicable flamegraph --key lineno

# --cgroup must name a cgroup of a mounted hierarchy: one line, before any work.
for c in snapshot top; do
	$T "$c" --cgroup /no-such-cgroup-of-tmbpf -o "$work/cg.tmbpf" > /dev/null 2> "$work/err"
	rc=$?
	if [ $rc -eq 2 ] && [ "$(wc -l < "$work/err")" -eq 1 ] && grep -q "no such cgroup" "$work/err"; then
		ok "$c --cgroup of no cgroup refused: $(cat "$work/err")"
	else
		nok "$c --cgroup of no cgroup: exit $rc: $(head -2 "$work/err" | tr '\n' '|')"
	fi
done

# --opt=value and --opt value alike; sane minimums.
$PY tests/formats/gen.py "$work" > /dev/null 2>&1 || true
snap=$(ls "$work"/*.pickle 2>/dev/null | head -1)
if [ -z "$snap" ]; then
	$PY - "$work/s.pickle" <<'EOF'
import sys, tracemalloc
tracemalloc.start(5)
data = [bytes(1000) for _ in range(100)]
tracemalloc.take_snapshot().dump(sys.argv[1])
EOF
	snap=$work/s.pickle
fi
a=$($T stats "$snap" --limit=2 2>/dev/null | md5sum)
b=$($T stats "$snap" --limit 2 2>/dev/null | md5sum)
[ "$a" = "$b" ] && ok "--limit=2 and --limit 2 alike" || nok "--opt=value differs"
for bad in "--interval 1e-9" "--interval 0.05" "--every 0.01"; do
	cmd=top
	case $bad in --every*) cmd=snapshot ;; esac
	# shellcheck disable=SC2086
	$T $cmd -p 1 -o "$work/x" $bad > /dev/null 2> "$work/err"
	rc=$?
	[ "$cmd" = top ] && $T top -p 1 $bad > /dev/null 2> "$work/err" && rc=0
	if [ $rc -eq 2 ] && grep -q "from 0.1" "$work/err"; then ok "$cmd $bad refused (at least 0.1 s)"; else nok "$cmd $bad: exit $rc: $(cat "$work/err")"; fi
done

# --version: versions and the kernel features; --version --json is JSON.
if $T --version > "$work/v" && grep -q '^tmbpf [0-9]' "$work/v" && grep -q '^libbpf ' "$work/v" &&
   grep -q 'uprobe_multi' "$work/v" && grep -q 'optimized uprobes' "$work/v" && grep -q 'BTF' "$work/v"; then
	ok "--version: $(tr '\n' ' ' < "$work/v" | tr -s ' ')"
else
	nok "--version: $(cat "$work/v")"
fi
$T --version --json | $PY -c 'import json,sys; d=json.load(sys.stdin); assert {"tmbpf","libbpf","uprobe_multi","optimized_uprobes","btf"} <= set(d)' &&
	ok "--version --json parses" || nok "--version --json"

# info --json: JSON with the same counts as the text.
if $T info "$snap" --json > "$work/info.json" &&
   $PY - "$work/info.json" "$($T info "$snap" | awk '/^traces:/ { print $2 }')" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["traces"] == int(sys.argv[2]), (d["traces"], sys.argv[2])
assert d["format"] == "pickle" and "meta" in d and "domains" in d
EOF
then ok "info --json parses and matches the text"; else nok "info --json"; fi

# The man page and the completion are what the tables generate.
if tools/gen_docs.py --check "$T" > "$work/gd" 2>&1; then ok "docs/tmbpf.8 and tools/tmbpf.bash-completion match the option tables"; else nok "$(cat "$work/gd")"; fi
man -l docs/tmbpf.8 > /dev/null 2>&1 || command -v man > /dev/null || true
for c in $commands; do
	grep -q "^\.SS tmbpf .*$c" docs/tmbpf.8 || grep -q "^\.SS tmbpf \[$c\]" docs/tmbpf.8 || nok "man page lacks $c"
done
grep -q '^\.SH EXIT STATUS' docs/tmbpf.8 && grep -q '125' docs/tmbpf.8 && ok "man page documents the exit statuses" || nok "man page: no exit status"
if bash -c 'source tools/tmbpf.bash-completion; complete -p tmbpf' > "$work/c" 2>&1 && grep -q _tmbpf "$work/c"; then
	ok "completion: $(cat "$work/c")"
else
	nok "completion: $(cat "$work/c")"
fi
got=$(bash -c 'source tools/tmbpf.bash-completion; COMP_WORDS=(tmbpf stats x.pickle --old); COMP_CWORD=3; _tmbpf; echo "${COMPREPLY[*]}"')
[ "$got" = "--older-than" ] && ok "completion: 'tmbpf stats x --old' -> $got" || nok "completion: got '$got'"
got=$(bash -c 'source tools/tmbpf.bash-completion; COMP_WORDS=(tmbpf convert a b --format p); COMP_CWORD=5; _tmbpf; echo "${COMPREPLY[*]}"')
[ "$got" = "pickle pprof" ] && ok "completion: --format values -> $got" || nok "completion: --format got '$got'"
got=$(bash -c 'source tools/tmbpf.bash-completion; COMP_WORDS=(tmbpf -p 123 --so); COMP_CWORD=3; _tmbpf; echo "${COMPREPLY[*]}"')
[ "$got" = "--sort" ] && ok "completion: 'tmbpf -p 123 --so' -> $got (top's options)" || nok "completion: top got '$got'"
got=$(bash -c 'source tools/tmbpf.bash-completion; COMP_WORDS=(tmbpf fl); COMP_CWORD=1; _tmbpf; echo "${COMPREPLY[*]}"')
[ "$got" = "flamegraph" ] && ok "completion: commands" || nok "completion: commands got '$got'"

# make install DESTDIR=...: binary, man page, completion.
dest=$work/dest
if make --no-print-directory install PREFIX=/usr/local DESTDIR="$dest" > "$work/inst" 2>&1 &&
   [ -x "$dest/usr/local/bin/tmbpf" ] && [ -f "$dest/usr/local/share/man/man8/tmbpf.8" ] &&
   [ -f "$dest/usr/local/share/bash-completion/completions/tmbpf" ]; then
	ok "make install DESTDIR: $(cd "$dest" && find . -type f | sort | tr '\n' ' ')"
else
	nok "make install: $(tail -3 "$work/inst")"
fi

# Outputs: checked before the work, written whole, mode 0600.
start=$(date +%s%N)
$T convert "$snap" "$work/missing/x.tmbpf" > /dev/null 2> "$work/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "directory $work/missing does not exist" "$work/err"; then ok "convert to a missing directory: $(cat "$work/err")"; else nok "missing dir: $rc $(cat "$work/err")"; fi
umask 022
$T convert "$snap" "$work/out.tmbpf" 2> /dev/null
mode=$(stat -c %a "$work/out.tmbpf")
[ "$mode" = 600 ] && ok "snapshot files are written 0600" || nok "mode $mode"
[ -z "$(ls "$work" | grep '\.tmp\.')" ] && ok "no temporary file left" || nok "temporary left: $(ls "$work")"
if [ "$(id -u)" -eq 0 ] && id nobody > /dev/null 2>&1; then
	chown nobody "$work/out.tmbpf"
	$T convert "$snap" "$work/out.tmbpf" 2> "$work/err"
	if grep -q "replaced a file owned by nobody" "$work/err" && [ "$(stat -c %U "$work/out.tmbpf")" = root ]; then
		ok "replacing another user's file is said: $(head -1 "$work/err")"
	else
		nok "other owner: $(cat "$work/err")"
	fi
fi

# A FIFO (or any non-regular file) is refused at once, not waited on.
mkfifo "$work/fifo"
timeout 5 $T stats "$work/fifo" > /dev/null 2> "$work/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "FIFO" "$work/err"; then ok "FIFO input refused: $(cat "$work/err")"; else nok "FIFO: exit $rc $(cat "$work/err")"; fi
timeout 5 $T info /dev/null > /dev/null 2> "$work/err"
[ $? -eq 1 ] && grep -q "device" "$work/err" && ok "device input refused" || nok "device: $(cat "$work/err")"

# tmbpf run's exit statuses (no root needed to fail before tracing).
$T run --bogus > /dev/null 2>&1; rc=$?
[ $rc -eq 125 ] && ok "run: usage error is 125" || nok "run usage: $rc"
$T run -- /nonexistent/cmd > /dev/null 2>&1; rc=$?
[ $rc -eq 127 ] && ok "run: command not found is 127" || nok "run not found: $rc"
printf 'not a program\n' > "$work/notexec"; chmod 644 "$work/notexec"
$T run -- "$work/notexec" > /dev/null 2>&1; rc=$?
[ $rc -eq 126 ] && ok "run: command not executable is 126" || nok "run not executable: $rc"
$T run -o "$work/missing/x.pickle" -- "$PY" -c "open('$work/ran', 'w')" > /dev/null 2> "$work/err"; rc=$?
if [ $rc -eq 125 ] && [ ! -e "$work/ran" ] && grep -q "does not exist" "$work/err"; then
	ok "run -o to a missing directory: 125 before CMD runs"
else
	nok "run -o missing: $rc, ran=$([ -e "$work/ran" ] && echo yes || echo no) $(cat "$work/err")"
fi
grep -q '125' README.md && grep -q '127' README.md && ok "README documents the exit statuses" || nok "README lacks exit statuses"
exit 0
