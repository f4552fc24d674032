#!/usr/bin/env bash
# The layer check (make test): includes point down, privileges stay in their
# rooms. Layers, lowest first: core < placement < target < patch < capture < cli.
#   core       libc and zlib only; never prints, never exits
#   placement  core, libelf; no process, no BPF
#   target     core, placement, the BPF ABI header; reads processes, no libbpf
#   patch      core, placement, target; the only layer that writes into a target
#   capture    everything below, libbpf and the skeleton
#   cli        everything; the only layer that prints results or picks exit codes
# Prints one TAP-like line per rule; exits 1 when a rule is broken.
# TM_LAYER_ROOT=DIR checks another tree (tests of this check).
cd "${TM_LAYER_ROOT:-$(dirname "$0")/..}" || exit 1
rc=0

# includes_of LAYER: every '#include' of the layer's sources, as file:line:text
includes_of() { grep -nE '^\s*#\s*include' user/"$1"/*.[ch] 2>/dev/null; }

# check NAME LAYER FORBIDDEN-REGEX: no include of the layer matches the regex.
check() {
	local name=$1 layer=$2 re=$3 bad
	bad=$(includes_of "$layer" | grep -E "$re")
	if [ -n "$bad" ]; then
		echo "not ok - layers: $name"
		echo "$bad" | sed 's/^/#   /'
		rc=1
	else
		echo "ok - layers: $name"
	fi
}

# libbpf and the skeleton (kernel UAPI headers such as linux/seccomp.h are
# fine above core; linux/bpf.h is libbpf's business)
libbpf='[<"](bpf/|libbpf|linux/bpf\.h|tmbpf\.skel\.h)'
check "core includes only libc and zlib" core \
	"$libbpf|[<\"](gelf|libelf|linux/)|[\"](placement|target|patch|capture|cli)/|\"tmbpf\.h\""
check "placement includes only core and libelf (no process, no BPF)" placement \
	"$libbpf|[\"](target|patch|capture|cli)/|\"tmbpf\.h\""
check "target includes core, placement and the ABI header (no libbpf)" target \
	"$libbpf|[\"](patch|capture|cli)/"
check "patch includes core, placement and target (no libbpf)" patch \
	"$libbpf|[\"](capture|cli)/"
check "capture never includes cli" capture '["]cli/'

# Writing into another process: ptrace pokes and register writes,
# process_vm_writev, or /proc/PID/mem opened for writing. Only patch/ may.
bad=$(grep -nE 'PTRACE_(POKE|SETREGS|SETFPREGS|POKEUSER)|process_vm_writev' \
	user/{core,placement,target,capture,cli}/*.[ch] 2>/dev/null)
for f in user/{core,placement,target,capture,cli}/*.c; do
	[ -f "$f" ] || continue
	if grep -qE '"/proc/%[a-z]*/mem"|/mem"' "$f" && grep -qE 'O_RDWR|O_WRONLY' "$f"; then
		bad+=$'\n'"$f: opens a process's memory and opens files for writing"
	fi
done
if [ -n "${bad//$'\n'/}" ]; then
	echo "not ok - layers: only user/patch/ writes into a target"
	echo "$bad" | sed '/^$/d; s/^/#   /'
	rc=1
else
	echo "ok - layers: only user/patch/ writes into a target"
fi

# Printing and exit codes: libraries report through the log callback
# (core/log.h) and return errors; the CLI prints and exits. _exit() in a
# forked child before exec is the one exception.
bad=$(grep -nE '\b(printf|fprintf|vfprintf|puts|fputs|putchar|perror|exit|abort)\s*\(|\bstd(out|err)\b' \
	user/{core,placement,target,patch,capture}/*.c 2>/dev/null | grep -vE '\b_exit\s*\(')
if [ -n "$bad" ]; then
	echo "not ok - layers: only user/cli/ prints or exits"
	echo "$bad" | sed 's/^/#   /'
	rc=1
else
	echo "ok - layers: only user/cli/ prints or exits"
fi
exit $rc
