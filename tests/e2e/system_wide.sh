#!/usr/bin/env bash
# System-wide session (root): one `tmbpf snapshot --cgroup CG` traces 20
# CPython processes of six interpreters at once (pyenv 3.11-3.13, Debian's
# 3.11, sid's 3.14 and 3.15 through chroot; SW_PROGRAMS: fewer), started after it
# (caught at their exec, from start-up), some of them 5 s later; each
# process's snapshot, written when it finalizes, must agree with that
# program's own tracemalloc (the e2e bounds: >= 0.99, top 5 lines the same),
# its output must equal an untraced run's, with 0 drops, and tmbpf's memory
# (BPF maps + RSS) must stay below 512 MiB. The processes are put in a
# cgroup of the test's own, so nothing else on the host is touched.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/e2e/lib/cgroup.bash
top=$PWD
progs=$top/tests/e2e/programs
work=$(mktemp -d ${TMPDIR:-/tmp}/tmbpf-sw.XXXXXX)
cg=
tm=
iwr=
cleanup() {
	test_cgroup_cleanup
	[ -n "$iwr" ] && rm -rf "$iwr"
}
trap cleanup EXIT
[ -n "${KEEP_WORK:-}" ] && trap - EXIT
PYENV_ROOT=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
TIMEOUT=${TIMEOUT:-120}

if [ "$(id -u)" -ne 0 ]; then
	echo "skip - system-wide: needs root for BPF"
	exit 0
fi
cmp_py=$(ls -d "$PYENV_ROOT"/versions/3.12.*/bin/python3.12 2>/dev/null | head -1)
interpreters=()
for v in 3.11 3.12 3.13; do
	p=$(ls -d "$PYENV_ROOT"/versions/$v.*/bin/python$v 2>/dev/null | head -1)
	[ -n "$p" ] && interpreters+=("$p")
done
[ -x /usr/bin/python3.11 ] && interpreters+=(/usr/bin/python3.11)
if [ ${#interpreters[@]} -lt 4 ] || [ -z "$cmp_py" ]; then
	echo "not ok - system-wide: needs pyenv 3.11-3.13 and Debian's python3.11 (found ${#interpreters[@]})"
	exit 0
fi
# sid's 3.14 and 3.15 (static LTO builds, tools/test_roots.sh), run by chroot:
# "ROOT:PYTHON" entries. Their programs, oracles and comparisons live in a
# directory of ours inside the root ($iw there, $root$iw here).
ROOTS=${TMBPF_ROOTS:-/var/cache/tmbpf-test}
root=$ROOTS/sid
iw=
if [ -s "$root/VERSIONS" ] && iwr=$(mktemp -d "$root/tmp/tmbpf-sw.XXXXXX"); then
	iw=${iwr#"$root"}
	for v in 3.14 3.15; do
		chroot "$root" python$v -c pass 2>/dev/null && interpreters+=("$root:python$v")
	done
else
	echo "skip - system-wide: no sid root at $root (tools/test_roots.sh): 3.14/3.15 not in the mix"
fi

test_cgroup_make system-wide || exit 0

# The agent's shipped configuration (tools/systemd) parses and runs: its
# command line, on our cgroup while still empty, for 1 s.
(
	. tools/systemd/tmbpf.default
	out=$work/agent/${TMBPF_OUTPUT##*/}
	mkdir -p "$work/agent"
	exec_line=$(sed -n 's/^ExecStart=[^ ]* //p' tools/systemd/tmbpf.service)
	# shellcheck disable=SC2086
	set -- ${exec_line%% \$TMBPF_OPTS*} $TMBPF_OPTS --cgroup "$cgpath" --duration 1 -o "$out"
	if ./tmbpf "$@" 2> "$work/agent.err" && grep -q "processes traced" "$work/agent.err"; then
		echo "ok - system-wide: the systemd unit's command line runs: tmbpf $*"
	else
		echo "not ok - system-wide: the systemd unit's command line fails: tmbpf $*: $(tail -2 "$work/agent.err" | tr '\n' ' ')"
	fi
)

# The programs: 5 of the e2e set on each interpreter = 20 processes.
# 10 frames: 20 programs at once make ~10^6 distinct 25-frame stacks, more
# than fits in 512 MiB (docs/system-wide.md).
frames=${SW_FRAMES:-10}
# 5 programs per interpreter: the 20 of issue 13 (docs/system-wide.md).
programs=${SW_PROGRAMS:-"classes.py containers.py cache.py gen_async.py recursion.py"}
export TM_CTHREADS_LIB=$work/cthreads_loop.so
cc -shared -fPIC -O2 -pthread -o "$TM_CTHREADS_LIB" "$progs/cthreads_loop.c"

# Each of the 20 waits at its start for a go file (a wrapper outside the
# program directory, so its lines are not compared; the oracle runs the
# same wrapper): all 20 are started at once, alive together, then run
# their programs together. Before them, one process runs a program
# directly, started 5 s after tmbpf: it must be caught at its start-up.
cat > "$work/wait_go.py" <<'PY'
import os, runpy, sys, time
while not os.path.exists(sys.argv[1]):
    time.sleep(0.02)
sys.argv = sys.argv[2:]
sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))  # as when run directly
runpy.run_path(sys.argv[0], run_name="__main__")
PY
touch "$work/go.oracle"
if [ -n "$iw" ]; then # programs in $iw/p (compared), the rest beside
	mkdir -p "$root$iw/p"
	cp "$progs"/*.py "$TM_CTHREADS_LIB" "$root$iw/p/"
	cp "$top/tests/e2e/compare.py" "$work/wait_go.py" "$root$iw/"
	touch "$root$iw/go.oracle"
fi
# py_run N GO [OPTION...]: exec run N's interpreter with OPTIONs on
# wait_go.py GO and its program, in the program's directory (through chroot
# for a ROOT:PYTHON one; exec all the way: the pid stays). ORACLE=1: its
# tracemalloc snapshot goes to runN/oracle.pickle (TM_ORACLE_OUT).
py_run() {
	local n=$1 go=$2 py prog
	read -r py prog < "$work/run$n/what"
	shift 2
	case $py in
	*:*)
		exec chroot "${py%%:*}" /bin/sh -c 'cd "$0" && exec "$@"' "$iw/p" env \
			TM_CTHREADS_LIB="$iw/p/${TM_CTHREADS_LIB##*/}" \
			${ORACLE:+TM_ORACLE_OUT=$iw/run$n/oracle.pickle} \
			"${py#*:}" "$@" "$iw/wait_go.py" "$iw/$go" "$prog" ;;
	*)
		cd "$progs" || exit 1
		[ -n "${ORACLE:-}" ] && export TM_ORACLE_OUT=$work/run$n/oracle.pickle
		exec "$py" "$@" "$work/wait_go.py" "$work/$go" "$prog" ;;
	esac
}
export -f py_run
export work progs iw TM_CTHREADS_LIB
# The 20 (interpreter, program) pairs: interpreter i mod I, program i mod 5,
# distinct while I and 5 are coprime (4 interpreters, or 6 with sid's).
read -r -a plist <<< "$programs"
n=0
for i in $(seq 0 19); do
	[ "$i" -lt $((${#interpreters[@]} * ${#plist[@]})) ] || break
	n=$((n + 1))
	d=$work/run$n
	mkdir -p "$d"
	[ -n "$iw" ] && mkdir -p "$root$iw/run$n"
	echo "${interpreters[$((i % ${#interpreters[@]}))]} ${plist[$((i % ${#plist[@]}))]}" > "$d/what"
	timeout "$TIMEOUT" bash -c 'py_run "$@"' _ $n go.oracle > "$d/plain.out" 2>&1
	ORACLE=1 timeout "$TIMEOUT" bash -c 'py_run "$@"' _ $n go.oracle -X tracemalloc=$frames \
		> /dev/null 2>&1
done
late=$((n + 1))
d=$work/run$late
mkdir -p "$d"
echo "${interpreters[1]} classes.py" > "$d/what"
(cd "$progs" && timeout "$TIMEOUT" "${interpreters[1]}" classes.py > "$d/plain.out" 2>&1)
(cd "$progs" && TM_ORACLE_OUT=$d/oracle.pickle timeout "$TIMEOUT" "${interpreters[1]}" -X tracemalloc=$frames \
	classes.py > /dev/null 2>&1)

mkdir -p "$work/snaps"
./tmbpf snapshot ${SW_VERBOSE:-} --cgroup "$cgpath" --frames $frames --max-memory ${SW_MAX_MEMORY:-320m} -o "$work/snaps/%p-%n.pickle" 2> "$work/tmbpf.err" &
tm=$!
for i in $(seq 100); do grep -q "processes traced" "$work/tmbpf.err" && break; sleep 0.1; done
if ! grep -q "processes traced" "$work/tmbpf.err"; then
	echo "not ok - system-wide: tmbpf did not start: $(tail -1 "$work/tmbpf.err")"
	exit 0
fi

start_one() { # start_one N: in the cgroup, then exec the interpreter
	local d=$work/run$1 py prog
	read -r py prog < "$d/what"
	(
		echo "$BASHPID" > "$cg/cgroup.procs"
		if [ "$1" = "$late" ]; then cd "$progs" && exec "$py" "$prog"; fi
		py_run "$1" go
	) > "$d/traced.out" 2>&1 &
	echo $! > "$d/pid"
}
# The one started 5 s after tmbpf, alone: caught at its start-up, traced
# to its end as `tmbpf run` would.
sleep 5
start_one "$late"
wait "$(cat "$work/run$late/pid")"
for i in $(seq "$n"); do start_one "$i"; done
# All 20 traced (or 30 s), then they run together.
for i in $(seq 300); do
	[ "$(grep -c '^tmbpf: tracing PID' "$work/tmbpf.err")" -ge "$n" ] && break
	sleep 0.1
done
touch "$work/go"
[ -n "$iw" ] && touch "$root$iw/go"
n_all=$late
# Memory while all run: tmbpf's RSS + the memlock of its BPF maps.
peak_mem=0 peak_rss=0 peak_maps=0
for i in $(seq $((TIMEOUT * 5))); do
	rss=$(awk '/^VmRSS:/ { print $2 * 1024 }' /proc/$tm/status 2>/dev/null)
	maps=$(cat /proc/$tm/fdinfo/* 2>/dev/null | awk '/^memlock:/ { s += $2 } END { print s + 0 }')
	cur=$(( ${rss:-0} + maps ))
	[ "$cur" -gt "$peak_mem" ] && peak_mem=$cur peak_rss=${rss:-0} peak_maps=$maps
	alive=0
	for j in $(seq "$n_all"); do kill -0 "$(cat "$work/run$j/pid")" 2>/dev/null && alive=1; done
	[ "$alive" = 0 ] && break
	sleep 0.2
done
for j in $(seq "$n_all"); do wait "$(cat "$work/run$j/pid")" 2>/dev/null; done
sleep 1
kill -TERM "$tm"
wait "$tm"
trc=$?
tm=
mib=$((peak_mem / 1048576))
if [ "$trc" -eq 0 ] && [ "$mib" -lt 512 ] && [ "$mib" -gt 0 ]; then
	echo "ok - system-wide: tmbpf exited 0; its memory peaked at $mib MiB (BPF maps $((peak_maps / 1048576)) + RSS $((peak_rss / 1048576)) MiB) for $n_all processes"
else
	echo "not ok - system-wide: tmbpf exited $trc, memory peak $mib MiB: $(grep -v wrote "$work/tmbpf.err" | tail -3 | tr '\n' ' ')"
fi
grep -q "0 events lost in all" "$work/tmbpf.err" &&
	echo "ok - system-wide: 0 events lost over all processes" ||
	echo "not ok - system-wide: loss: $(grep -E 'dropped|lost' "$work/tmbpf.err" | head -3 | tr '\n' ' ')"

versions=$(for py in "${interpreters[@]}"; do
	case $py in
	*:*) chroot "${py%%:*}" "${py#*:}" -c 'import sys; print(sys.version.split()[0])' ;;
	*) "$py" -c 'import sys; print(sys.version.split()[0])' ;;
	esac
done | sort -u | wc -l)
good=0
at_start=0
for i in $(seq "$n_all"); do
	d=$work/run$i
	read -r py prog < "$d/what"
	pid=$(cat "$d/pid")
	tag="$(basename "${py#*:}") ${prog%.py} (PID $pid)"
	[ "$i" = "$late" ] && tag="$tag, started 5 s after tmbpf"
	if ! cmp -s "$d/plain.out" "$d/traced.out"; then
		echo "not ok - system-wide $tag: output differs from an untraced run"
		continue
	fi
	snap=$(ls "$work/snaps/$pid"-*.pickle 2>/dev/null | tail -1)
	if [ -z "$snap" ]; then
		echo "not ok - system-wide $tag: no snapshot written ($(grep "PID $pid" "$work/tmbpf.err" | head -2 | tr '\n' ' '))"
		continue
	fi
	if grep -q "tracing PID $pid .*from its start" "$work/tmbpf.err"; then
		at_start=$((at_start + 1))
	elif [ "$i" = "$late" ]; then
		echo "not ok - system-wide $tag: not caught at its start-up"
		continue
	fi
	case $py in
	*:*) # compared inside the root by that interpreter (its Snapshot.load reads both)
		cp "$snap" "$root$iw/run$i/tmbpf.pickle"
		res=$(chroot "${py%%:*}" /bin/sh -c 'cd "$0" && exec "$@"' "$iw/p" "${py#*:}" \
			"$iw/compare.py" "$iw/run$i/tmbpf.pickle" "$iw/run$i/oracle.pickle" "$iw/p" 2>&1) ;;
	*) res=$(cd "$progs" && "$cmp_py" "$top/tests/e2e/compare.py" "$snap" "$d/oracle.pickle" "$progs" 2>&1) ;;
	esac
	first=$(echo "$res" | head -1)
	agree=$(echo "$first" | sed -n 's/.*agreement=\([0-9.]*\).*/\1/p')
	if [ -n "$agree" ] && awk "BEGIN{exit !($agree >= 0.99)}" && echo "$first" | grep -q 'top5=same'; then
		good=$((good + 1))
		[ "$i" = "$late" ] && echo "ok - system-wide $tag: caught at its start-up, $first"
	else
		echo "not ok - system-wide $tag: $first"
		echo "$res" | tail -n +2 | head -8 | sed 's/^/#  /'
	fi
done
if [ "$good" -eq "$n_all" ]; then
	echo "ok - system-wide: all $n_all processes ($versions interpreters; $n running at once) agree with their own tracemalloc (>= 0.99, top 5 same), outputs identical"
else
	echo "not ok - system-wide: $good of $n_all processes agree with their oracle"
fi
echo "# system-wide: $at_start of $n_all caught at their start-up (the others while their interpreter started: a burst of execs while others are attached)"
exit 0
