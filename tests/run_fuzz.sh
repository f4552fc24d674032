#!/usr/bin/env bash
# Run each fuzzer for N executions over its seed corpus (tests/fuzz/corpus/NAME).
runs=$1; shift
rc=0
for f in "$@"; do
	name=$(basename "$f")
	seeds=tests/fuzz/corpus/${name#fuzz_}
	work=$(mktemp -d)
	[ -d "$seeds" ] && cp -r "$seeds"/. "$work"/
	if "$f" -runs="$runs" -max_len=65536 -rss_limit_mb=2048 "$work" 2> "build/fuzz/$name.log"; then
		echo "ok - $name: $(grep -o 'Done [0-9]* runs' "build/fuzz/$name.log" | tail -1)"
	else
		echo "not ok - $name: finding, see build/fuzz/$name.log"; rc=1
	fi
	rm -rf "$work"
done
exit $rc
