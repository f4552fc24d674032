#!/usr/bin/env bash
# Attaching with -p to a running program: two snapshots a second apart, and
# `tmbpf compare` puts the growing cache's line on top. Also the live view.
set -u
cd "$(dirname "$0")/../.." || exit 1
top=$PWD
PYENV_ROOT=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
work=$(mktemp -d /tmp/tmbpf-attach.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
[ "$(id -u)" -eq 0 ] || { echo "skip - attach: needs root"; exit 0; }
target=$top/tests/e2e/live/growing_cache.py
line=$(grep -n 'GROWING LINE' "$target" | cut -d: -f1)

wait_ready() { # file
	for _ in $(seq 100); do grep -q READY "$1" 2>/dev/null && return 0; sleep 0.05; done
	return 1
}

for v in 3.8 3.9 3.10 3.11 3.12 3.13; do
	py=$(ls -d "$PYENV_ROOT"/versions/$v.*/bin/python$v 2>/dev/null | head -1)
	[ -n "$py" ] || { echo "skip - attach python$v: not installed"; continue; }
	"$py" "$target" 20 > "$work/out.$v" 2>&1 &
	pid=$!
	if ! wait_ready "$work/out.$v"; then
		echo "not ok - attach python$v: target did not start"; kill $pid; continue
	fi
	timeout 30 ./tmbpf snapshot -p $pid -o "$work/s$v.pickle" --frames 25 --every 1 --duration 2.5 \
		2> "$work/err.$v"
	rc=$?
	if [ $rc -ne 0 ] || [ ! -s "$work/s$v.0002.pickle" ]; then
		echo "not ok - attach python$v: snapshot --every exited $rc: $(tail -1 "$work/err.$v")"
		kill $pid; wait $pid 2>/dev/null; continue
	fi
	first=$(./tmbpf compare "$work/s$v.0001.pickle" "$work/s$v.0002.pickle" --limit 1 2>/dev/null)
	case "$first" in
	*growing_cache.py:$line:*) echo "ok - attach python$v: compare puts the growing cache on top: $first" ;;
	*) echo "not ok - attach python$v: compare's top line is '$first', want growing_cache.py:$line" ;;
	esac
	# The live view: a report with a header, then the final statistics.
	timeout 20 ./tmbpf -p $pid --frames 5 --interval 1 --limit 3 > "$work/top.$v" 2> "$work/toperr.$v" &
	tpid=$!
	sleep 2.5
	kill -INT $tpid
	wait $tpid
	rc=$?
	if [ $rc -eq 0 ] && grep -q '^== final statistics' "$work/top.$v" && grep -q "PID $pid CPython $v" "$work/top.$v" &&
	   grep -q "growing_cache.py:$line: size=" "$work/top.$v"; then
		echo "ok - attach python$v: live view prints reports and final statistics"
	else
		echo "not ok - attach python$v: live view (exit $rc): $(head -3 "$work/top.$v" | tr '\n' '|') $(tail -1 "$work/toperr.$v")"
	fi
	kill $pid 2>/dev/null
	wait $pid 2>/dev/null
done

# A suite reports failures as "not ok" lines; reaching this line means it ran to its end.
exit 0
