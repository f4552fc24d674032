#!/usr/bin/env bash
# An embedder exec'd after a system-wide tmbpf, that creates its interpreter
# only 4 s later (tm_catch_exec waits 0.3 s for it): caught where it is rather than
# given up, traced to its finalization (snapshot written then), its 20000
# kept bytearrays at <string>:1, 0 drops. Built against pyenv 3.12's
# libpython (--enable-shared).
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/e2e/lib/cgroup.bash
top=$PWD
PYENV_ROOT=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
work=$(mktemp -d /tmp/tmbpf-embed.XXXXXX)
cg=
tm=
trap test_cgroup_cleanup EXIT
[ "$(id -u)" -eq 0 ] || { echo "skip - embedder: needs root for BPF"; exit 0; }
pydir=$(ls -d "$PYENV_ROOT"/versions/3.12.* 2>/dev/null | head -1)
if [ -z "$pydir" ] || ! cc -O2 -o "$work/embed" "$top/tests/e2e/live/embed_late.c" -I"$pydir/include/python3.12" \
	-L"$pydir/lib" -lpython3.12 -Wl,-rpath,"$pydir/lib" 2> "$work/cc.err"; then
	echo "not ok - embedder: cannot build against pyenv 3.12: $(head -2 "$work/cc.err" | tr '\n' ' ')"
	exit 0
fi
test_cgroup_make embedder || exit 0
./tmbpf snapshot -v --cgroup "$cgpath" -o "$work/%p.tmbpf" 2> "$work/tmbpf.err" &
tm=$!
for _ in $(seq 100); do grep -q "processes traced" "$work/tmbpf.err" && break; sleep 0.1; done
(echo "$BASHPID" > "$cg/cgroup.procs"; exec "$work/embed") > "$work/out" 2>&1 &
pid=$!
wait $pid
prc=$?
for _ in $(seq 50); do [ -s "$work/$pid.tmbpf" ] && break; sleep 0.1; done
kill -INT $tm
wait $tm
trc=$?
tm=
line=$(./tmbpf stats "$work/$pid.tmbpf" --limit 1 2>/dev/null | grep '^<string>:1:')
count=$(echo "$line" | sed -n 's/.*count=\([0-9]*\).*/\1/p')
why=
[ $prc -eq 0 ] && [ "$(cat "$work/out")" = 20000 ] || why="$why target exit $prc, output '$(head -c 80 "$work/out")';"
[ $trc -eq 0 ] || why="$why tmbpf exit $trc;"
grep -q "PID $pid: caught where it was" "$work/tmbpf.err" || why="$why not caught where it was;"
grep -q "PID $pid embed finalized" "$work/tmbpf.err" || why="$why no finalization seen;"
grep -q "PID $pid: drops: 0" "$work/tmbpf.err" || why="$why drops: $(grep "PID $pid: drops" "$work/tmbpf.err");"
[ -n "$count" ] && [ "$count" -ge 40000 ] || why="$why top line '$line' (want <string>:1 with >= 40000 blocks);"
if [ -z "$why" ]; then
	echo "ok - embedder: interpreter started 4 s after exec: caught, traced to finalization, $line"
else
	echo "not ok - embedder:$why $(grep -v 'counter\|report point' "$work/tmbpf.err" | tail -3 | tr '\n' ' ')"
fi
exit 0
