#!/usr/bin/env bash
# Integration tests (root, real CPythons): each build/integration/test_*
# binary prints its own TAP-like lines; one that exits non-zero fails here.
cd "$(dirname "$0")/../.." || exit 1
rc=0
bins=(build/integration/test_*)
if [ ! -x "${bins[0]}" ]; then
	echo "not ok - integration: no test binaries in build/integration (make test builds them)"
	exit 1
fi
for t in "${bins[@]}"; do
	case "$t" in *.d) continue ;; esac
	"$t" || { echo "not ok - $(basename "$t") exited with status $?"; rc=1; }
done
exit $rc
