#!/usr/bin/env bash
# tmbpf inside a PID namespace of its own (a privileged container, the usual
# way to ship an agent): BPF sees the host's pids, tmbpf its namespace's;
# both `run` and `snapshot -p` must trace (the program's growing line in the top three),
# never write an empty snapshot and say "drops: 0".
set -u
cd "$(dirname "$0")/../.." || exit 1
top=$PWD
PYENV_ROOT=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
work=$(mktemp -d /tmp/tmbpf-pidns.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
[ "$(id -u)" -eq 0 ] || { echo "skip - pidns: needs root"; exit 0; }
command -v unshare > /dev/null || { echo "not ok - pidns: unshare missing"; exit 0; }
py=$(ls -d "$PYENV_ROOT"/versions/3.12.*/bin/python3.12 2>/dev/null | head -1)
[ -n "$py" ] || { echo "not ok - pidns: no pyenv 3.12"; exit 0; }

top_line() { # the program's growing line among the first three statistics
	./tmbpf stats "$1" --limit 3 2>/dev/null | grep -m1 "growing_cache.py:11"
}

# run: the child is pid 2 of the new namespace
unshare --pid --fork --mount-proc ./tmbpf run --frames 5 -o "$work/run.pickle" -- \
	"$py" "$top/tests/e2e/live/growing_cache.py" 2 > /dev/null 2> "$work/run.err"
rc=$?
line=$(top_line "$work/run.pickle")
if [ $rc -eq 0 ] && echo "$line" | grep -q "growing_cache.py:11"; then
	echo "ok - pidns: run inside a PID namespace traces (top: $line)"
else
	echo "not ok - pidns: run inside a PID namespace: exit $rc, top '$line': $(tail -2 "$work/run.err" | tr '\n' ' ')"
fi

# snapshot -p of a process of that namespace, by its namespace pid
cat > "$work/inside.sh" <<INNER
"$py" "$top/tests/e2e/live/growing_cache.py" 20 > "$work/target.out" &
for _ in \$(seq 100); do grep -q READY "$work/target.out" && break; sleep 0.05; done
./tmbpf snapshot -p \$! --frames 5 --duration 1 -o "$work/attach.pickle"
rc=\$?
kill \$!
exit \$rc
INNER
unshare --pid --fork --mount-proc bash "$work/inside.sh" > /dev/null 2> "$work/attach.err"
rc=$?
line=$(top_line "$work/attach.pickle")
if [ $rc -eq 0 ] && echo "$line" | grep -q "growing_cache.py:11"; then
	echo "ok - pidns: snapshot -p inside a PID namespace traces (top: $line)"
else
	echo "not ok - pidns: snapshot -p inside a PID namespace: exit $rc, top '$line': $(tail -2 "$work/attach.err" | tr '\n' ' ')"
fi
exit 0
