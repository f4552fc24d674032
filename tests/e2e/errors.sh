#!/usr/bin/env bash
# Bad targets get one clear line and a non-zero exit; a target killed
# mid-trace still leaves a snapshot.
set -u
cd "$(dirname "$0")/../.." || exit 1
top=$PWD
PYENV_ROOT=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
work=$(mktemp -d /tmp/tmbpf-errors.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
[ "$(id -u)" -eq 0 ] || { echo "skip - errors: needs root"; exit 0; }

# expect NAME EXPECTED_REGEX CMD...: exit 1 and exactly one stderr line matching.
expect() {
	local name=$1 re=$2; shift 2
	timeout 20 "$@" > "$work/out" 2> "$work/err"
	local rc=$? lines
	lines=$(wc -l < "$work/err")
	if [ $rc -eq 1 ] && [ "$lines" -eq 1 ] && grep -qE "$re" "$work/err"; then
		echo "ok - errors: $name: exit 1: $(cat "$work/err")"
	else
		echo "not ok - errors: $name: exit $rc, $lines stderr lines: $(head -3 "$work/err" | tr '\n' '|')"
	fi
}

# A PID that does not exist.
pid_max=$(cat /proc/sys/kernel/pid_max)
gone=$((pid_max - 1))
while kill -0 $gone 2>/dev/null; do gone=$((gone - 1)); done
expect "no such PID" "no process with PID $gone" ./tmbpf -p $gone
expect "no such PID (snapshot)" "no process with PID $gone" ./tmbpf snapshot -p $gone -o "$work/x.pickle"

# A PID that is not Python.
sleep 60 & sl=$!
expect "not Python" "PID $sl is not a CPython process" ./tmbpf -p $sl
kill $sl

# An unsupported CPython version names the version.
for v in 3.7 3.6 2.7; do
	py=$(ls -d "$PYENV_ROOT"/versions/$v.*/bin/python$v 2>/dev/null | head -1)
	[ -n "$py" ] || continue
	"$py" -c 'import time; time.sleep(60)' & old=$!
	sleep 0.3
	expect "CPython $v unsupported" "CPython $v is not supported" ./tmbpf -p $old
	kill $old
	break
done

# Without root.
py=$(ls -d "$PYENV_ROOT"/versions/3.12.*/bin/python3.12 2>/dev/null | head -1)
"$py" -c 'import time; time.sleep(60)' & tgt=$!
sleep 0.3
if id nobody >/dev/null 2>&1; then
	cp ./tmbpf "$work/tmbpf" && chmod 755 "$work" "$work/tmbpf"
	expect "not root" "(run as root|permission|not permitted)" setpriv --reuid=nobody --regid=nogroup --clear-groups "$work/tmbpf" -p $tgt
fi
kill $tgt

# Bad usage: exit 2.
./tmbpf -p 2>/dev/null; rc=$?
[ $rc -eq 2 ] && echo "ok - errors: usage error exits 2" || echo "not ok - errors: usage error exited $rc"

# A target killed mid-trace: one line saying so, a snapshot still written, exit non-zero.
"$py" "$top/tests/e2e/live/growing_cache.py" 30 > "$work/gc.out" 2>&1 & victim=$!
for _ in $(seq 100); do grep -q READY "$work/gc.out" && break; sleep 0.05; done
timeout 30 ./tmbpf snapshot -p $victim -o "$work/killed.pickle" --frames 10 2> "$work/kerr" &
tm=$!
sleep 1.5
kill -9 $victim
wait $tm
rc=$?
if [ $rc -ne 0 ] && [ -s "$work/killed.pickle" ] && grep -q "PID $victim exited" "$work/kerr" &&
   ./tmbpf stats "$work/killed.pickle" --limit 1 2>/dev/null | grep -q 'growing_cache.py'; then
	echo "ok - errors: target killed mid-trace: exit $rc, snapshot written with its lines"
else
	echo "not ok - errors: target killed mid-trace: exit $rc, $(tr '\n' '|' < "$work/kerr")"
fi

# A suite reports failures as "not ok" lines; reaching this line means it ran to its end.
exit 0
