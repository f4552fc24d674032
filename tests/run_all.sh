#!/usr/bin/env bash
# tmbpf test driver (make test). Every suite prints TAP-like lines:
#   "ok - NAME", "not ok - NAME: why", "skip - NAME: why".
# A suite fails as a whole (one "not ok - suite NAME: ..." line) when it
# exits non-zero or prints no result line at all: a suite that dies
# silently must not pass. The script keeps a log and ends with one line
#   "tests: N passed, N failed, N skipped"
# In CI (CI=true) a skip is a failure: the BPF end-to-end tests must run for real.
set -u
set -o pipefail
cd "$(dirname "$0")/.." || exit 1
log=build/test.log
mkdir -p build
: > "$log"

suites=(
	"unit|tests/run_unit.sh $(ls build/tests/test_* 2>/dev/null | grep -v '\.d$' | tr '\n' ' ')"
	"layers|tests/check_layers.sh"
)
# Every tests/<suite>/run.sh, e2e last (slowest).
for s in tests/*/run.sh; do
	[ "$s" = tests/e2e/run.sh ] && continue
	suites+=("$(basename "$(dirname "$s")")|$s")
done
[ -f tests/e2e/run.sh ] && suites+=("e2e|tests/e2e/run.sh")

for entry in "${suites[@]}"; do
	name=${entry%%|*}
	cmd=${entry#*|}
	echo "# suite $name: $cmd" | tee -a "$log"
	before=$(grep -cE '^(ok|not ok|skip) - ' "$log")
	# Suites may print anything; only the TAP-like lines count. The suite's
	# own exit status is what PIPESTATUS[0] holds.
	bash -c "$cmd" 2>&1 | tee -a "$log" | grep --line-buffered -E '^(ok|not ok|skip) - |^#'
	status=${PIPESTATUS[0]}
	after=$(grep -cE '^(ok|not ok|skip) - ' "$log")
	if [ "$after" -eq "$before" ]; then
		echo "not ok - suite $name: printed no result line (exit status $status)" | tee -a "$log"
	elif [ "$status" -ne 0 ]; then
		echo "not ok - suite $name: exited with status $status" | tee -a "$log"
	fi
done

passed=$(grep -c '^ok - ' "$log")
failed=$(grep -c '^not ok - ' "$log")
skipped=$(grep -c '^skip - ' "$log")
if [ "${CI:-}" = "true" ] && [ "$skipped" -gt 0 ]; then
	echo "# CI: $skipped skipped test(s) count as failures"
	failed=$((failed + skipped))
fi
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
