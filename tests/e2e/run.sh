#!/usr/bin/env bash
# BPF end-to-end suites (root): every tests/e2e/*.sh but this one, each
# printing TAP-like lines; a suite that exits non-zero fails the run.
# E2E_SUITES="a.sh b.sh" runs only those (for debugging).
cd "$(dirname "$0")" || exit 1
rc=0
for s in ${E2E_SUITES:-$(ls *.sh | grep -vx run.sh)}; do
	echo "# e2e/$s"
	bash "./$s" || { echo "not ok - e2e/$s exited with status $?"; rc=1; }
done
exit $rc
