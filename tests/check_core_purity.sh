#!/usr/bin/env bash
# The snapshot library (user/core) includes only libc and zlib: no BPF, no libbpf,
# no kernel headers, no printing, no exiting. Prints one TAP-like line.
cd "$(dirname "$0")/.." || exit 1
bad=$(grep -nE '#include *[<"](bpf/|linux/|libbpf|gelf|libelf|probe/|cli/)' user/core/*.[ch])
bad+=$(grep -nE '\b(printf|fprintf|puts|perror|exit|abort)\s*\(' user/core/*.c | grep -v 'snprintf\|vsnprintf')
if [ -n "$bad" ]; then
	echo "not ok - core purity: user/core must not include BPF/kernel headers, print or exit"
	echo "$bad" | sed 's/^/#   /'
	exit 1
fi
echo "ok - core purity: user/core includes only libc and zlib and never prints or exits"
