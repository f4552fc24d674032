#!/usr/bin/env bash
# Targets in other roots and namespaces, with sid's python3.14 (a root of
# tools/test_roots.sh):
#  - attach (-p) to a CPython in a plain chroot (its maps show the path from
#    our root: opened through /proc/PID/map_files), in a container (pid and
#    mount namespaces, pivot_root: its maps show the path inside it, opened
#    through /proc/PID/root), and to one that is PID 1 of its namespace;
#  - the traceback file names are the ones the target sees, and the
#    snapshot loads with that interpreter's Snapshot.load.
# Files only under a directory created in the root's /tmp. Needs root.
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=${TMBPF_ROOTS:-/var/cache/tmbpf-test}/sid
PY=python3.14
[ "$(id -u)" -eq 0 ] || { echo "skip - containers: needs root"; exit 0; }
[ -x ./tmbpf ] || { echo "not ok - containers: ./tmbpf is not built"; exit 1; }
if [ ! -s "$ROOT/VERSIONS" ] || ! chroot "$ROOT" $PY -c pass 2>/dev/null; then
	echo "skip - containers: no $PY in $ROOT (tools/test_roots.sh builds it)"
	exit 0
fi
w=$(mktemp -d "$ROOT/tmp/tmbpf-ct.XXXXXX") || { echo "not ok - containers: cannot write in $ROOT/tmp"; exit 1; }
iw=${w#"$ROOT"}
pids=()
trap 'touch "$w"/stop-* 2>/dev/null; for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$w"' EXIT
cat > "$w/live.py" <<'EOF'
import os, sys, time
ready, stop = sys.argv[1], sys.argv[2]
keep = [bytes(100 + i % 7) for i in range(20000)]
with open(ready, "w") as f:
    f.write("%d\n" % os.getpid())
while not os.path.exists(stop):
    keep.append(str(len(keep)) * 5)  # line 7: what tmbpf sees after attaching
    time.sleep(0.005)
EOF
cat > "$w/check.py" <<'EOF'
import sys, tracemalloc
snap = tracemalloc.Snapshot.load(sys.argv[1])
top = snap.statistics("lineno")
want = sys.argv[2]
hits = [s for s in top if s.traceback[0].filename == want and s.traceback[0].lineno == 7]
print("traces=%d top=%s:%d line7=%s" % (len(snap.traces), top[0].traceback[0].filename,
      top[0].traceback[0].lineno, hits[0].count if hits else 0))
sys.exit(0 if hits else 1)
EOF

# The host PID of the interpreter started for case NAME (its ready file
# holds the PID it sees itself as, which in a namespace is another number).
host_pid() { # NAME
	local p
	for _ in $(seq 200); do
		[ -s "$w/ready-$1" ] && break
		sleep 0.05
	done
	p=$(pgrep -f "^$PY $iw/live.py $iw/ready-$1 " | head -1)
	echo "$p"
}

attach_case() { # NAME DESCRIPTION
	local name=$1 desc=$2 p ns out
	p=$(host_pid "$name")
	if [ -z "$p" ]; then
		echo "not ok - containers $name: the target did not start ($desc)"
		return
	fi
	ns=$(awk '/^NSpid/ {print $NF}' "/proc/$p/status")
	if timeout 60 ./tmbpf snapshot -p "$p" --duration 1 -o "$w/$name.pickle" 2> "$w/$name.err" &&
		out=$(chroot "$ROOT" $PY "$iw/check.py" "$iw/$name.pickle" "$iw/live.py"); then
		echo "ok - containers $name: -p $p (PID $ns inside) $desc: $out"
	else
		echo "not ok - containers $name: $desc: $(tail -1 "$w/$name.err") ${out:-}"
	fi
	touch "$w/stop-$name"
}

# 1. A plain chroot.
chroot "$ROOT" $PY "$iw/live.py" "$iw/ready-chroot" "$iw/stop-chroot" & pids+=($!)
attach_case chroot "in a plain chroot"

# 2. A container: pid and mount namespaces, pivot_root into the root, not PID 1.
mkdir -p "$w/oldroot"
unshare --pid --mount --fork --propagation private sh -c "mount --bind '$ROOT' '$ROOT' &&
	cd '$ROOT' && pivot_root . '${iw#/}/oldroot' && cd / && mount -t proc proc /proc &&
	umount -l '$iw/oldroot' && $PY '$iw/live.py' '$iw/ready-container' '$iw/stop-container'" &
pids+=($!)
attach_case container "in a pid+mount namespace container (pivot_root)"

# 3. PID 1 of its namespace (unshare --fork: the child is init there).
unshare --pid --fork --mount-proc chroot "$ROOT" $PY "$iw/live.py" "$iw/ready-pid1" "$iw/stop-pid1" &
pids+=($!)
p=$(host_pid pid1)
if [ -n "$p" ] && [ "$(awk '/^NSpid/ {print $NF}' "/proc/$p/status")" = 1 ]; then
	attach_case pid1 "as PID 1 of its namespace"
else
	echo "not ok - containers pid1: the target is not PID 1 of its namespace"
fi
wait
echo "# containers: done"
exit 0
