#!/usr/bin/env bash
# make bench: every benchmark, each measured side by side in one run.
#   tools/bench_capture.sh - live: its first line is the calibration (what one kernel entry costs
#                            here), then tmbpf run (full, sampled, entry probes, the baseline
#                            build) vs tracemalloc vs memray vs untraced, per workload
#   tools/bench_stats.sh   - offline: tmbpf stats vs CPython Snapshot.load + statistics (1M traces)
set -u
cd "$(dirname "$0")/.." || exit 1
rc=0
for b in tools/bench_capture.sh tools/bench_stats.sh; do
	if [ -x "$b" ]; then
		echo "== $b"
		"$b" "$@" || rc=1
	fi
done
exit $rc
