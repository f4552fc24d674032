#!/usr/bin/env bash
# make asan: the sanitized build in $1 (build/asan) against the tests that
# need no root: unit tests of core, placement and target, then the
# differential and format suites through the sanitized tmbpf. Any ASan or
# UBSan report fails the run (halt_on_error, non-zero exit).
set -u
set -o pipefail
cd "$(dirname "$0")/.." || exit 1
out=${1:-build/asan}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
rc=0
n=0
for t in "$out"/tests/test_core_* "$out"/tests/test_placement_* "$out"/tests/test_target_*; do
	case "$t" in *.d) continue ;; esac
	[ -x "$t" ] || continue
	n=$((n + 1))
	if ! "$t" > "$out/$(basename "$t").log" 2>&1; then
		echo "not ok - asan $(basename "$t"): $(grep -m1 -E 'ERROR|runtime error|not ok' "$out/$(basename "$t").log")"
		rc=1
	else
		echo "ok - asan $(basename "$t"): $(grep -c '^ok' "$out/$(basename "$t").log") checks, no sanitizer report"
	fi
done
[ "$n" -gt 0 ] || { echo "not ok - asan: no sanitized unit tests in $out/tests"; exit 1; }
for suite in tests/diff/run.sh tests/formats/run.sh; do
	log=$out/$(basename "$(dirname "$suite")").log
	if TMBPF=$PWD/$out/tmbpf bash "$suite" > "$log" 2>&1 && ! grep -qE 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error' "$log"; then
		echo "ok - asan $suite: $(grep -c '^ok' "$log") passed, no sanitizer report"
	else
		echo "not ok - asan $suite: $(grep -m1 -E 'ERROR|runtime error|^not ok' "$log")"
		rc=1
	fi
done
exit $rc
