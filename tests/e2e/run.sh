#!/usr/bin/env bash
# BPF end-to-end suites (root). Each prints TAP-like lines.
cd "$(dirname "$0")" || exit 1
rc=0
for s in differential.sh predict.sh attach.sh errors.sh cleanup.sh debian.sh; do
	[ -x "$s" ] || continue
	echo "# e2e/$s"
	./"$s" || rc=1
done
exit $rc
