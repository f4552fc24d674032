#!/usr/bin/env bash
# The stub's edges (docs/capture-design.md, "The stub"): a target whose
# seccomp filter would kill the parasite gets entry probes and one line
# saying why (and sampled mode, which needs the stub, is refused); children
# forked while the stub is armed run as without it; a second tmbpf on the
# same process is refused in either probe mode; entry probes work in a
# process an earlier, SIGKILLed tmbpf left its stub in.
set -u
cd "$(dirname "$0")/../.." || exit 1
top=$PWD
PYENV_ROOT=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
work=$(mktemp -d /tmp/tmbpf-stubmodes.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
[ "$(id -u)" -eq 0 ] || { echo "skip - stub modes: needs root"; exit 0; }
py=$(ls -d "$PYENV_ROOT"/versions/3.12.*/bin/python3.12 2>/dev/null | head -1)
[ -n "$py" ] || { echo "not ok - stub modes: no pyenv 3.12"; exit 0; }
live=$top/tests/e2e/live

start() { # $1 program, $2 stop file, $3 output; sets tgt
	rm -f "$2"
	"$py" "$live/$1" "$2" > "$3" 2>&1 & tgt=$!
	for _ in $(seq 200); do grep -q READY "$3" && return 0; sleep 0.05; done
	return 1
}

traces() { # number of traces in a tracemalloc pickle
	"$py" -c 'import sys, tracemalloc; print(len(tracemalloc.Snapshot.load(sys.argv[1]).traces))' "$1" 2>/dev/null || echo 0
}

# 1. seccomp: KILL on memfd_create
if start seccomp_target.py "$work/sc.stop" "$work/sc.out"; then
	./tmbpf snapshot -p $tgt --duration 1 -o "$work/sc.pickle" > /dev/null 2> "$work/sc.err"
	rc=$?
	./tmbpf snapshot -p $tgt --sample-bytes 512k --duration 1 -o "$work/scs.pickle" > /dev/null 2> "$work/scs.err"
	src=$?
	touch "$work/sc.stop"
	wait $tgt
	trc=$?
	n=$(traces "$work/sc.pickle")
	if [ $rc -eq 0 ] && [ "$n" -gt 0 ] && grep -q "seccomp filter of PID .* answers KILL_PROCESS to memfd_create; using entry probes" "$work/sc.err" &&
		! grep -q "injected a stub" "$work/sc.err" && [ $trc -eq 0 ] && grep -q "^done True" "$work/sc.out"; then
		echo "ok - stub modes: seccomp would kill the parasite: entry probes, one line why ($n traces), target unharmed"
	else
		echo "not ok - stub modes: seccomp target: tmbpf $rc, $n traces, target $trc: $(tr '\n' ' ' < "$work/sc.err")"
	fi
	if [ $src -ne 0 ] && [ "$(wc -l < "$work/scs.err")" -eq 1 ] && grep -q "sampled mode needs the stub" "$work/scs.err" &&
		[ ! -e "$work/scs.pickle" ]; then
		echo "ok - stub modes: sampled mode refused where the stub cannot go: $(cat "$work/scs.err")"
	else
		echo "not ok - stub modes: sampled mode on the seccomp target: exit $src: $(tr '\n' ' ' < "$work/scs.err")"
	fi
else
	echo "not ok - stub modes: the seccomp target did not start: $(tail -1 "$work/sc.out")"
fi

# 2. fork while armed
if start forking_target.py "$work/fk.stop" "$work/fk.out"; then
	./tmbpf snapshot -p $tgt --duration 3 -o "$work/fk.pickle" > /dev/null 2> "$work/fk.err"
	rc=$?
	sleep 0.5 # children forked after the detach too
	touch "$work/fk.stop"
	wait $tgt
	trc=$?
	if [ $rc -eq 0 ] && grep -q "injected a stub" "$work/fk.err" && [ $trc -eq 0 ] &&
		grep -q "children ran: True failed: 0" "$work/fk.out"; then
		echo "ok - stub modes: children forked while the stub was armed all exited 0"
	else
		echo "not ok - stub modes: forking target: tmbpf $rc, target $trc: $(tail -2 "$work/fk.out" | tr '\n' ' ')"
	fi
else
	echo "not ok - stub modes: the forking target did not start"
fi

# 3. two sessions; 4. entry probes after a SIGKILLed stub session
if start kill_target.py "$work/kt.stop" "$work/kt.out"; then
	./tmbpf snapshot -p $tgt --duration 8 -o "$work/first.pickle" > /dev/null 2> "$work/first.err" & first=$!
	for _ in $(seq 100); do grep -q "^tmbpf: tracing" "$work/first.err" && break; sleep 0.1; done
	for mode in stub entry; do
		./tmbpf snapshot -p $tgt --probe-mode $mode --duration 1 -o "$work/second-$mode.pickle" > /dev/null 2> "$work/second-$mode.err"
		rc=$?
		if [ $rc -ne 0 ] && [ "$(wc -l < "$work/second-$mode.err")" -eq 1 ] &&
			grep -q "is already traced by tmbpf PID $first" "$work/second-$mode.err"; then
			echo "ok - stub modes: a second tmbpf ($mode probes) is refused: $(cat "$work/second-$mode.err")"
		else
			echo "not ok - stub modes: a second tmbpf ($mode probes): exit $rc: $(tr '\n' ' ' < "$work/second-$mode.err")"
		fi
	done
	kill -KILL $first
	wait $first 2>/dev/null
	./tmbpf snapshot -p $tgt --probe-mode entry --duration 1 -o "$work/entry.pickle" > /dev/null 2> "$work/entry.err"
	rc=$?
	n=$(traces "$work/entry.pickle")
	if [ $rc -eq 0 ] && [ "$n" -gt 0 ] && grep -q "drops: 0$" "$work/entry.err"; then
		echo "ok - stub modes: entry probes after a SIGKILLed stub session ($n traces, 0 drops)"
	else
		echo "not ok - stub modes: entry probes after a SIGKILLed stub session: exit $rc, $n traces: $(tr '\n' ' ' < "$work/entry.err")"
	fi
	touch "$work/kt.stop"
	wait $tgt
	trc=$?
	if [ $trc -eq 0 ] && ! grep -q "mismatches [1-9]" "$work/kt.out"; then
		echo "ok - stub modes: the target of the session tests exited 0, every result right"
	else
		echo "not ok - stub modes: the target exited $trc: $(tail -2 "$work/kt.out" | tr '\n' ' ')"
	fi
else
	echo "not ok - stub modes: the 4-thread target did not start"
fi

exit 0
