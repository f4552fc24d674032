#!/usr/bin/env bash
# Capture overhead benchmark (issues 4 and 11): untraced vs -X tracemalloc=1/25 vs tmbpf run
# (full mode, --probe-mode entry, --sample-bytes 512k) vs the baseline tmbpf built from the
# commit before issue 11 vs memray (in the Debian sid root), on each workload in tools/bench/,
# side by side, interleaved. The first line is the calibration (build/bench/calibrate); tables
# on stdout, markdown in build/bench-capture.md. Default interpreters: pyenv 3.12 and Debian
# /usr/bin/python3.11, plus the sid root's python3.14 for memray. Method: docs/performance.md.
#
#   tools/bench_capture.sh                 # full default run (~15 minutes on the 2-CPU VM)
#   tools/bench_capture.sh --acceptance    # also check issue 11's criteria: PASS/FAIL lines
#   tools/bench_capture.sh --all-pythons   # pyenv 3.8-3.13 + Debian 3.11
#   tools/bench_capture.sh --help          # every option (--reps, --scale, --variants, ...)
#
# BENCH_CAPTURE_ARGS (environment) is appended to the arguments, e.g. for make bench.
set -u
cd "$(dirname "$0")/.." || exit 1
root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
py=$(ls -d "$root"/versions/3.12.*/bin/python3.12 2>/dev/null | sort -V | tail -n 1)
if [ -z "$py" ]; then
	py=$(command -v python3 || true)
	[ -n "$py" ] || { echo "bench_capture: no pyenv 3.12 under $root and no python3" >&2; exit 1; }
fi
# shellcheck disable=SC2086
exec "$py" tools/bench/driver.py "$@" ${BENCH_CAPTURE_ARGS:-}
