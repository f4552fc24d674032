#!/usr/bin/env bash
# make bench: every benchmark, each measured side by side in one run.
#   tools/bench_stats.sh   - offline: tmbpf stats vs CPython Snapshot.load + statistics (1M traces)
#   tools/bench_capture.sh - live: tmbpf run vs tracemalloc vs untraced, per workload
set -u
cd "$(dirname "$0")/.."
rc=0
for b in tools/bench_stats.sh tools/bench_capture.sh; do
	if [ -x "$b" ]; then
		echo "== $b"
		"$b" "$@" || rc=1
	fi
done
exit $rc
