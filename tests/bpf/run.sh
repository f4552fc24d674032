#!/usr/bin/env bash
# BPF component suite (root): tmbpf's probes leave nothing behind.
# A capture session (build/integration/test_capture_session --hold PID) attaches to a
# CPython that keeps allocating in a thread; then it exits normally, or is
# SIGKILLed, while calls are in flight. Afterwards none of
# its BPF programs or links may remain, the target's code must be back to the
# file's bytes (no int3 left at any probe address), no tracefs uprobe event may
# be left, and the target must go on and exit 0.
set -u
cd "$(dirname "$0")/../.." || exit 1
bin=build/integration/test_capture_session
root=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
py=$(ls "$root"/versions/3.12.*/bin/python3.12 "$root"/versions/3.*/bin/python3.1[0-9] 2>/dev/null | head -1)
tmp=$(mktemp -d /tmp/tmbpf_bpf.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

if [ "$(id -u)" != 0 ]; then
	echo "skip - bpf: no probe left behind: needs root"
	exit 0
fi
for need in "$bin" "$py"; do
	if [ ! -x "$need" ]; then
		echo "not ok - bpf: missing $need (make build/integration/test_capture_session; pyenv CPython)"
		exit 0
	fi
done

ids() { # program and link ids loaded now, one per line
	bpftool prog show 2>/dev/null | sed -n 's/^\([0-9]*\): .*/prog \1/p'
	bpftool link show 2>/dev/null | sed -n 's/^\([0-9]*\): .*/link \1/p'
}

ids_of() { # ids_of PID: the programs and links PID holds file descriptors of
	cat /proc/"$1"/fdinfo/* 2>/dev/null |
		sed -n 's/^prog_id:[[:space:]]*\([0-9]*\)/prog \1/p; s/^link_id:[[:space:]]*\([0-9]*\)/link \1/p' |
		sort -u
}

byte_at() { # byte_at PID ADDR: one byte of the process's memory, hex
	/usr/bin/python3 - "$1" "$2" <<'PY'
import sys
with open(f"/proc/{sys.argv[1]}/mem", "rb") as f:
    f.seek(int(sys.argv[2], 0))
    print(f.read(1).hex())
PY
}

# The target allocates in a loop in two threads until told to stop, so the
# session ends while calls are inside probed functions (return addresses
# hijacked by uretprobes); it must finish them normally.
target_py='import sys, threading
stop = False
def churn():
    n = 0
    while not stop:
        x = [bytearray(600) for _ in range(200)]
        d = {i: str(i) for i in range(200)}
        n += 1
    return n
t = threading.Thread(target=churn); t.start()
print("ready", flush=True)
sys.stdin.readline()
stop = True
t.join()
x = [bytearray(1000) for _ in range(1000)]
print("alive", len(x))'

scenario() { # scenario NAME exit|kill
	local name=$1 how=$2 target holder ours addrs left bad=0 i
	"$py" -c "$target_py" < "$tmp/target.in" > "$tmp/target.out" &
	target=$!
	exec 8> "$tmp/target.in"
	for i in $(seq 50); do grep -q ready "$tmp/target.out" && break; sleep 0.1; done
	"$bin" --hold "$target" < "$tmp/hold.in" > "$tmp/hold.out" 2> "$tmp/hold.err" &
	holder=$!
	exec 9> "$tmp/hold.in"
	for i in $(seq 50); do grep -q attached "$tmp/hold.out" && break; sleep 0.1; done
	if ! grep -q attached "$tmp/hold.out"; then
		echo "not ok - bpf: $name: the session did not attach: $(tail -1 "$tmp/hold.err")"
		exec 9>&- 8>&-
		kill -9 "$holder" "$target" 2>/dev/null
		wait "$holder" "$target" 2>/dev/null
		return
	fi
	sleep 0.5 # let the target's thread run through the probes
	ours=$(ids_of "$holder")
	# Probe addresses from -v: "role 0xADDR+OFF: ..."; a probe on a 5-byte
	# nop (the stub's report points) says "(optimized)": the kernel turns it
	# into a call (e8) after its first hit, an int3 until then.
	addrs=$(sed -n 's/.* \(0x[0-9a-f]*\)+\([0-9]*\): .*/\1 \2/p' "$tmp/hold.err" |
		while read -r a o; do printf '0x%x\n' $((a + o)); done)
	nop5s=$(sed -n 's/.* \(0x[0-9a-f]*\)+\([0-9]*\): .*(optimized).*/\1 \2/p' "$tmp/hold.err" |
		while read -r a o; do printf '0x%x\n' $((a + o)); done)
	for a in $addrs; do
		b=$(byte_at "$target" "$a")
		[ "$b" = cc ] || { [ "$b" = e8 ] && echo "$nop5s" | grep -qx "$a"; } || bad=$((bad + 1))
	done
	if [ -z "$ours" ] || [ -z "$addrs" ] || [ "$bad" -ne 0 ]; then
		echo "not ok - bpf: $name: while attached: programs/links [$(echo $ours)], $bad probe address(es) without int3"
	else
		echo "ok - bpf: $name: attached: $(echo "$ours" | grep -c prog) programs, $(echo "$ours" | grep -c link) links, int3 (or an optimized call) at $(echo $addrs | wc -w) probe addresses"
	fi
	if [ "$how" = kill ]; then
		kill -9 "$holder"
	else
		exec 9>&-
	fi
	wait "$holder" 2>/dev/null
	exec 9>&- 2>/dev/null
	# The kernel frees programs and links after an RCU grace period.
	for i in $(seq 50); do
		ids | sort > "$tmp/after"
		left=$(comm -12 <(echo "$ours" | sort) "$tmp/after")
		[ -z "$left" ] && break
		sleep 0.1
	done
	bad=0
	for a in $addrs; do
		b=$(byte_at "$target" "$a")
		[ "$b" = cc ] && bad=$((bad + 1))
		# a nop5 probe must be a nop again (its stub stays, inert)
		[ "$b" = e8 ] && echo "$nop5s" | grep -qx "$a" && bad=$((bad + 1))
	done
	if [ -n "$left" ] || [ "$bad" -ne 0 ]; then
		echo "not ok - bpf: $name: left behind: [$(echo $left)], int3 still at $bad address(es)"
	else
		echo "ok - bpf: $name: no program, link or int3 left"
	fi
	if grep -qs "libbpf_$holder" /sys/kernel/tracing/uprobe_events /sys/kernel/debug/tracing/uprobe_events; then
		echo "not ok - bpf: $name: tracefs uprobe event of PID $holder left"
	else
		echo "ok - bpf: $name: no tracefs uprobe event left"
	fi
	echo go >&8
	exec 8>&-
	wait "$target"
	local rc=$?
	if [ "$rc" -eq 0 ] && grep -q "alive 1000" "$tmp/target.out"; then
		echo "ok - bpf: $name: the target went on and exited 0"
	else
		echo "not ok - bpf: $name: the target exited $rc: $(cat "$tmp/target.out")"
	fi
}

mkfifo "$tmp/hold.in" "$tmp/target.in"
scenario "session exits" exit
scenario "session SIGKILLed" kill
# Kernels without uprobe_multi get one perf-event link per probe instead.
export TMBPF_PERF_LINKS=1
scenario "session exits (perf-event links)" exit
scenario "session SIGKILLed (perf-event links)" kill
unset TMBPF_PERF_LINKS

# A suite reports failures as "not ok" lines; reaching this line means it ran to its end.
exit 0
