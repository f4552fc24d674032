#!/usr/bin/env bash
# tmbpf run through launchers that fork and exec: the first CPython of the
# command's process tree is traced, the exit status is the command's, and
# when nothing could be traced one line says why.
#  - chroot ROOT python3.14, unshare --pid --fork chroot ..., sh -c 'cd x &&
#    python ...; ...', timeout 60 python: the program's lines in the snapshot,
#    the program's exit status (3) returned;
#  - --follow-children: a CPython starting two more: three snapshots;
#  - nothing traced: a shell alone, and a CPython too old;
#  - tmbpf SIGKILLed while it holds the finalizing thread for the exit
#    snapshot: the program runs on, its atexit handler runs, nothing is left
#    stopped.
# Needs root; uses sid's python3.14 (tools/test_roots.sh) and a pyenv CPython.
set -u
cd "$(dirname "$0")/../.." || exit 1
top=$PWD
ROOT=${TMBPF_ROOTS:-/var/cache/tmbpf-test}/sid
PYENV_ROOT=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
[ "$(id -u)" -eq 0 ] || { echo "skip - run_tree: needs root"; exit 0; }
[ -x ./tmbpf ] || { echo "not ok - run_tree: ./tmbpf is not built"; exit 1; }
HPY=$(ls -d "$PYENV_ROOT"/versions/3.12.*/bin/python3.12 2>/dev/null | head -1)
[ -n "$HPY" ] || HPY=/usr/bin/python3.11
work=$(mktemp -d /tmp/tmbpf-run.XXXXXX)
rw=
trap 'rm -rf "$work"; [ -n "$rw" ] && rm -rf "$rw"' EXIT

cat > "$work/prog.py" <<'EOF'
import sys
KEEP = [bytes(1000) for _ in range(2000)]   # line 2: 2 MB live at exit
sys.exit(3)
EOF

# has_line PICKLE FILENAME LINE: the snapshot holds >= 1.9 MB on that line.
has_line() {
	"$HPY" - "$@" <<'EOF'
import sys, tracemalloc
snap = tracemalloc.Snapshot.load(sys.argv[1])
for st in snap.statistics("lineno"):
    f = st.traceback[0]
    if f.filename == sys.argv[2] and f.lineno == int(sys.argv[3]) and st.size >= 1900000:
        sys.exit(0)
sys.exit(1)
EOF
}

run_case() { # NAME PROGRAM-PATH-AS-THE-TARGET-SEES-IT PICKLE CMD...
	local name=$1 seen=$2 pickle=$3
	shift 3
	timeout 120 ./tmbpf run -o "$pickle" -- "$@" > "$work/$name.out" 2> "$work/$name.err"
	local rc=$?
	if [ $rc -eq 3 ] && [ -s "$pickle" ] && has_line "$pickle" "$seen" 2; then
		echo "ok - run_tree $name: traced, exit status 3 passed on"
	else
		echo "not ok - run_tree $name: exit $rc, $(grep -v '^tmbpf: drops' "$work/$name.err" | tail -1)"
	fi
}

run_case sh_c "$work/prog.py" "$work/sh.pickle" sh -c "cd '$work' && $HPY prog.py; exit \$?"
run_case timeout "$work/prog.py" "$work/timeout.pickle" timeout 60 "$HPY" "$work/prog.py"
if [ -s "$ROOT/VERSIONS" ] && chroot "$ROOT" python3.14 -c pass 2>/dev/null; then
	rw=$(mktemp -d "$ROOT/tmp/tmbpf-run.XXXXXX")
	cp "$work/prog.py" "$rw/"
	run_case chroot "${rw#"$ROOT"}/prog.py" "$work/chroot.pickle" chroot "$ROOT" python3.14 "${rw#"$ROOT"}/prog.py"
	run_case unshare "${rw#"$ROOT"}/prog.py" "$work/unshare.pickle" \
		unshare --pid --fork chroot "$ROOT" python3.14 "${rw#"$ROOT"}/prog.py"
else
	echo "skip - run_tree chroot: no python3.14 in $ROOT (tools/test_roots.sh builds it)"
fi

# --follow-children: every CPython of the tree.
cat > "$work/parent.py" <<EOF
import subprocess, sys
KEEP = [bytes(1000) for _ in range(2000)]
for _ in range(2):
    subprocess.run([sys.executable, "$work/prog.py"])
EOF
timeout 120 ./tmbpf run --follow-children -o "$work/fc.pickle" -- "$HPY" "$work/parent.py" \
	> /dev/null 2> "$work/fc.err"
rc=$?
n=$(ls "$work"/fc*.pickle 2>/dev/null | wc -l)
children_ok=1
for f in "$work"/fc.[0-9]*.pickle; do has_line "$f" "$work/prog.py" 2 || children_ok=0; done
if [ $rc -eq 0 ] && [ "$n" -eq 3 ] && [ $children_ok = 1 ] && has_line "$work/fc.pickle" "$work/parent.py" 2; then
	echo "ok - run_tree follow_children: 3 CPythons traced, one file each"
else
	echo "not ok - run_tree follow_children: exit $rc, $n files: $(tail -2 "$work/fc.err" | tr '\n' '|')"
fi

# Nothing traced: the line says why; the status is still the command's.
timeout 60 ./tmbpf run -- sh -c 'exit 5' 2> "$work/none.err"
rc=$?
if [ $rc -eq 5 ] && grep -q 'nothing traced: no CPython started (ran ' "$work/none.err"; then
	echo "ok - run_tree no_python: exit 5, $(tail -1 "$work/none.err")"
else
	echo "not ok - run_tree no_python: exit $rc: $(tail -1 "$work/none.err")"
fi
OLD=$(ls -d "$PYENV_ROOT"/versions/3.7.*/bin/python3.7 2>/dev/null | head -1)
if [ -n "$OLD" ]; then
	timeout 60 ./tmbpf run -- sh -c "$OLD -c pass; exit 4" 2> "$work/old.err"
	rc=$?
	if [ $rc -eq 4 ] && grep -q 'nothing traced: python3.7 (PID [0-9]*): CPython 3.7 is not supported' "$work/old.err"; then
		echo "ok - run_tree too_old: exit 4, $(tail -1 "$work/old.err")"
	else
		echo "not ok - run_tree too_old: exit $rc: $(tail -1 "$work/old.err")"
	fi
fi

# SIGKILL of tmbpf while it holds the finalizing thread: the program must
# run on (atexit handlers included) and nothing stay stopped.
cat > "$work/kill.py" <<'EOF'
import atexit, sys
KEEP = [str(i) * 3 for i in range(400000)]   # a snapshot that takes a while
atexit.register(lambda: open(sys.argv[2], "w").write("atexit ran\n"))
open(sys.argv[1], "w").write("finalizing next\n")
EOF
./tmbpf run --frames 25 -o "$work/k.pickle" -- "$HPY" "$work/kill.py" "$work/k.marker" "$work/k.atexit" \
	> /dev/null 2> "$work/k.err" &
tm=$!
held=
for _ in $(seq 3000); do
	c=$(pgrep -P $tm | head -1)
	if [ -n "$c" ] && [ -s "$work/k.marker" ] && [ "$(awk '{print $3}' "/proc/$c/stat" 2>/dev/null)" = t ]; then
		held=$c
		break
	fi
	sleep 0.002
done
kill -KILL $tm
wait $tm 2> /dev/null
gone=0
for _ in $(seq 200); do
	[ -n "$held" ] && [ -d "/proc/$held" ] && [ "$(awk '{print $3}' "/proc/$held/stat" 2>/dev/null)" != Z ] ||
		{ gone=1; break; }
	sleep 0.05
done
if [ -n "$held" ] && [ $gone = 1 ] && [ -s "$work/k.atexit" ]; then
	echo "ok - run_tree sigkill_at_finalize: PID $held held for the exit snapshot, tmbpf SIGKILLed: it ran on, atexit ran"
elif [ -z "$held" ]; then
	echo "not ok - run_tree sigkill_at_finalize: never saw the child held at finalization ($(tail -1 "$work/k.err"))"
else
	echo "not ok - run_tree sigkill_at_finalize: PID $held $( [ $gone = 1 ] && echo exited || echo "still there, state $(awk '{print $3}' /proc/$held/stat)"), atexit $( [ -s "$work/k.atexit" ] && echo ran || echo 'did not run')"
	kill -KILL "$held" 2> /dev/null
fi

# A suite reports failures as "not ok" lines; reaching this line means it ran to its end.
exit 0
