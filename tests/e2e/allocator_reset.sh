#!/usr/bin/env bash
# A target that puts its raw allocator back past tmbpf's stub (what an
# embedder, or a window of CPython's start-up that opened before the stub
# came, does: PyMem_SetAllocator with a saved copy): tmbpf must take the
# pointers again, say so, and count it (allocator_reset, a loss), never go
# blind while saying "drops: 0". Sampled mode, where that blindness costs
# most: sampled frees are seen at the raw free only. Per interpreter
# (Debian's LTO 3.11, pyenv 3.12): the warning, the count in the file, and
# the estimates after the retake (the kept line about KEEP x 100000 bytes,
# the churned line, 1 GB allocated and freed, near nothing).
set -u
cd "$(dirname "$0")/../.." || exit 1
top=$PWD
PYENV_ROOT=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
work=$(mktemp -d /tmp/tmbpf-reset.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
[ "$(id -u)" -eq 0 ] || { echo "skip - allocator_reset: needs root for BPF"; exit 0; }
interpreters=(/usr/bin/python3.11 $(ls -d "$PYENV_ROOT"/versions/3.12.*/bin/python3.12 2>/dev/null | head -1))
[ ${#interpreters[@]} -eq 2 ] && [ -x /usr/bin/python3.11 ] ||
	{ echo "not ok - allocator_reset: needs Debian's python3.11 and pyenv 3.12"; exit 0; }

# size_of FILE LINENO: the estimated bytes of allocator_reset.py:LINENO
size_of() {
	./tmbpf stats "$1" --key lineno --include "*allocator_reset.py:$2" --json 2>/dev/null |
		python3 -c 'import json, sys; print(sum(s["size"] for s in json.load(sys.stdin)["statistics"]))'
}

for py in "${interpreters[@]}"; do
	name=$(basename "$(dirname "$(dirname "$py")")")-$(basename "$py")
	d=$work/$name
	mkdir -p "$d"
	mkfifo "$d/in"
	exec 3<> "$d/in" # held open: the target's stdin never ends early
	"$py" "$top/tests/e2e/live/allocator_reset.py" < "$d/in" > "$d/out" 2>&1 &
	pid=$!
	for _ in $(seq 100); do grep -q saved "$d/out" && break; sleep 0.05; done
	./tmbpf snapshot -p "$pid" --sample-bytes 64k --duration 30 -o "$d/s.tmbpf" 2> "$d/err" &
	tm=$!
	for _ in $(seq 200); do grep -q "tracing PID" "$d/err" && break; sleep 0.05; done
	echo go >&3
	for _ in $(seq 200); do grep -q kept "$d/out" && break; sleep 0.05; done
	kill -INT "$tm"
	wait "$tm"
	rc=$?
	echo done >&3
	wait "$pid"
	exec 3>&-
	kept=$(size_of "$d/s.tmbpf" 42)
	churned=$(size_of "$d/s.tmbpf" 44)
	# (a free in the blind 0.2 s may add a missed_free: a loss it caused)
	drops=$(./tmbpf info "$d/s.tmbpf" 2>/dev/null | sed -n '/^drops:/,/^thread ids:/p' |
		grep -oE '[a-z_]+=[0-9]+' | tr '\n' ' ')
	why=
	[ $rc -eq 0 ] || why="$why exit $rc;"
	grep -q "pointer was put back .* taken again" "$d/err" || why="$why no retake warning;"
	echo "$drops" | grep -qw "allocator_reset=1" || why="$why file's drops: '$drops';"
	[ -n "$kept" ] && [ "$kept" -ge 2000000 ] && [ "$kept" -le 8000000 ] ||
		why="$why kept line estimated at '$kept' B (4000000 kept);"
	[ -n "$churned" ] && [ "$churned" -le 20000000 ] ||
		why="$why churned line estimated at '$churned' B (1 GB freed);"
	if [ -z "$why" ]; then
		echo "ok - allocator_reset: $name: pointers taken again and counted (drops: $drops), kept ${kept} B, churned ${churned} B"
	else
		echo "not ok - allocator_reset: $name:$why $(grep -v '^tmbpf: PID .*: counter' "$d/err" | tail -3 | tr '\n' ' ')"
	fi
done
exit 0
