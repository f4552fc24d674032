#!/usr/bin/env bash
# Run each unit test binary; their "ok"/"not ok" lines are counted by run_all.sh.
rc=0
for t in "$@"; do
	"$t" || { echo "not ok - $(basename "$t") exited non-zero"; rc=1; }
done
exit $rc
