#!/usr/bin/env bash
# Build tmbpf as of COMMIT into DIR/tmbpf for the capture benchmark's baseline variant, from
# `git archive COMMIT` unpacked into DIR/src (never from the work tree, never into it).
# DIR/COMMIT records the full hash DIR/tmbpf was built from: a second call with the same commit
# does nothing. The build's output goes to DIR/build.log; DIR/src is removed afterwards, built or
# not (the top-level Makefile includes every *.d file under build/, and the old tree's must not
# reach it).
#
#   tools/bench/build_baseline.sh COMMIT DIR     # tools/bench/driver.py runs it (--baseline-commit)
#
# Exit: 0 built (or already built), 1 failure (one line on stderr with the reason), 2 usage.
set -u
if [ $# -ne 2 ]; then
	echo "usage: $0 COMMIT DIR" >&2
	exit 2
fi
commit=$1
dir=$2
repo=$(cd "$(dirname "$0")/../.." && pwd)
fail() {
	echo "build_baseline: $*" >&2
	exit 1
}
full=$(git -C "$repo" rev-parse --verify -q "$commit^{commit}") ||
	fail "commit $commit is not in $repo (a clone with its history is needed)"
if [ -x "$dir/tmbpf" ] && [ "$(cat "$dir/COMMIT" 2>/dev/null)" = "$full" ]; then
	exit 0
fi
rm -rf "$dir/src" "$dir/tmbpf" "$dir/COMMIT"
mkdir -p "$dir/src" || fail "cannot create $dir/src"
trap 'rm -rf "$dir/src"' EXIT
git -C "$repo" archive "$full" | tar -x -C "$dir/src" || fail "git archive $commit failed"
# A make running this (make bench) exports its flags and command-line variables (OUT=...):
# the baseline's own Makefile must not see them.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
make -C "$dir/src" -j"$(nproc)" tmbpf >"$dir/build.log" 2>&1 ||
	fail "make of commit $commit failed (see $dir/build.log)"
cp "$dir/src/tmbpf" "$dir/tmbpf" || fail "cannot copy $dir/src/tmbpf"
echo "$full" >"$dir/COMMIT"
