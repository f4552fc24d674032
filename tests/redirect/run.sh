#!/usr/bin/env bash
# Devirtualization detection and redirect mode on distribution builds (issue 5).
# Prints TAP-like lines: "ok - NAME", "not ok - NAME: why", "skip - NAME: why".
#   - detection: guards on Debian's /usr/bin/python3.11, none on the pyenv builds
#   - hooked pointers (PYTHONMALLOC=malloc/pymalloc_debug, -X tracemalloc): refused
#   - /proc/PID/mem 8-byte writes are never seen torn by a concurrent reader
#   - a busy 4-thread target survives 100 apply/restore cycles, same output,
#     pointers back to their original values
#   - coverage with and without redirect against PyMem_SetAllocator counting
#     hooks (needs python3.11-dev for Python.h)
# Live tests need root (ptrace rights on the target, perf-event uprobes).
set -u
cd "$(dirname "$0")/../.." || exit 1

PY=/usr/bin/python3.11
OUT=build/tests/redirect
PYENV_ROOT=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
CFLAGS="-std=gnu11 -g -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -Iuser -Ibpf"
D=$OUT/driver
TMP=$(mktemp -d /tmp/tmbpf-redirect.XXXXXX)
pids=()

cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	rm -rf "$TMP"
}
trap cleanup EXIT

ok() { echo "ok - $1"; }
notok() { echo "not ok - $1: $2"; }
skip() { echo "skip - $1: $2"; }

# Wait up to 20 s for a file to be non-empty.
wait_file() {
	for _ in $(seq 200); do
		[ -s "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# Wait up to 20 s for a file to exist.
wait_file_exists() {
	for _ in $(seq 200); do
		[ -e "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

mkdir -p "$OUT"
# The drivers link the tmbpf libraries: `make test` builds them.
if [ ! -x "$D" ] || [ ! -x "$OUT/driver_target" ]; then
	notok build "$D or $OUT/driver_target missing (make test builds them)"
	exit 1
fi
${CC:-cc} $CFLAGS -pthread -o "$OUT/tear" tests/redirect/tear.c || { notok build "tear.c"; exit 1; }
ok build

# ---- detection on files: pyenv builds (no LTO/PGO) have no guard -----------------
impl_names="_PyObject_Malloc _PyObject_Calloc _PyObject_Realloc _PyObject_Free _PyMem_RawMalloc \
_PyMem_RawCalloc _PyMem_RawRealloc _PyMem_RawFree"
found_pyenv=0
for lib in "$PYENV_ROOT"/versions/3.{8,9,10,11,12,13}.*/lib/libpython3.*.so.1.0; do
	[ -f "$lib" ] || continue
	found_pyenv=1
	ver=$(basename "$(dirname "$(dirname "$lib")")")
	addrs=$(nm "$lib" 2>/dev/null | awk -v names="$impl_names" '
		BEGIN { n = split(names, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 }
		($3 in want) { print "0x" $1 }')
	if [ "$(echo "$addrs" | wc -w)" -ne 8 ]; then
		notok "devirt_none_pyenv_$ver" "allocator symbols not found in $lib"
		continue
	fi
	# shellcheck disable=SC2086
	out=$($D scan-file "$lib" 0 $addrs)
	guards=$(echo "$out" | awk '/^impl/ { g += $4 } END { print g + 0 }')
	compares=$(echo "$out" | awk '/^impl/ { c += $6 } END { print c + 0 }')
	if [ "$guards" -eq 0 ] && echo "$out" | grep -q '^stripped 0 pie 1'; then
		ok "devirt_none_pyenv_$ver (0 guards, $compares plain compares in obmalloc)"
	else
		notok "devirt_none_pyenv_$ver" "$guards guards found: $(echo "$out" | tr '\n' ' ')"
	fi
done
[ $found_pyenv = 1 ] || skip devirt_none_pyenv "no pyenv CPython 3.8-3.13 under $PYENV_ROOT"

# ---- the PIE guard shape, from gcc's own PGO (no PIE PGO CPython in Debian 12) -------
pgo="$TMP/pgo"
mkdir -p "$pgo"
if ${CC:-cc} -O2 -fPIE -pie -fprofile-generate -fprofile-dir="$pgo" -o "$pgo/pie" tests/redirect/pie_pgo.c &&
	"$pgo/pie" >/dev/null &&
	${CC:-cc} -O2 -fPIE -pie -fprofile-use -fprofile-dir="$pgo" -Wno-missing-profile \
		-o "$pgo/pie" tests/redirect/pie_pgo.c; then
	addrs=$(nm "$pgo/pie" | awk '$3 == "my_malloc" || $3 == "my_free" { print "0x" $1 }')
	# shellcheck disable=SC2086
	out=$($D scan-file "$pgo/pie" 0 $addrs)
	if [ "$(echo "$out" | awk '/^impl/ && $4 == 1 { n++ } END { print n + 0 }')" -eq 2 ] &&
		objdump -d "$pgo/pie" | grep -q 'lea .*<my_malloc>'; then
		ok "devirt_pie_pgo_guards (lea impl(%rip),%reg; cmp; jne -> call *: 1 guard per function)"
	else
		notok devirt_pie_pgo_guards "$(echo "$out" | tr '\n' ' ')"
	fi
else
	skip devirt_pie_pgo_guards "cannot build the PGO test program"
fi

# ---- everything else runs Debian's python3.11 --------------------------------------
if [ ! -x $PY ]; then
	for t in devirt_debian_guards redirect_refuses_hooked proc_mem_write_whole redirect_100_cycles \
		redirect_coverage; do
		skip $t "$PY missing: apt-get install python3"
	done
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	for t in devirt_debian_guards redirect_refuses_hooked proc_mem_write_whole redirect_100_cycles \
		redirect_coverage; do
		skip $t "needs root (ptrace rights on the target, perf-event uprobes)"
	done
	exit 0
fi

# Start "$@" in the background (pid in $bg), recorded for cleanup.
start_bg() {
	"$@" &
	bg=$!
	pids+=("$bg")
}

# ---- detection on the live Debian process -----------------------------------------
start_bg $PY -c 'import time; time.sleep(60)'
sleep 0.3
out=$($D scan $bg 2>&1)
kill $bg 2>/dev/null
g() { echo "$out" | awk -v fn="$1" -v n="$2" '/^impl/ && $3 == fn { i++; if (i == n) print $5 }'; }
if echo "$out" | grep -q '^stripped 1 pie 0 defaults 1/1' &&
	echo "$out" | grep -q '^coverage: partial' &&
	[ "$(g malloc 1)" -ge 100 ] && [ "$(g malloc 2)" -ge 100 ] && [ "$(g free 1)" -ge 10 ] &&
	[ "$(g free 2)" -ge 10 ]; then
	ok "devirt_debian_guards (stripped, non-PIE; $(echo "$out" | sed -n 's/^detail: //p'))"
else
	notok devirt_debian_guards "unexpected scan: $(echo "$out" | tr '\n' ' ')"
fi
echo "$out" | grep '^impl' | sed 's/^/# /'

# ---- hooked pointers are never redirected --------------------------------------------
bad=""
for mode in malloc pymalloc_debug tracemalloc; do
	if [ $mode = tracemalloc ]; then
		start_bg $PY -X tracemalloc -c 'import time; time.sleep(60)'
	else
		PYTHONMALLOC=$mode start_bg $PY -c 'import time; time.sleep(60)'
	fi
	sleep 0.3
	scan=$($D scan $bg 2>&1)
	cyc=$($D cycle $bg 1 2>&1)
	kill $bg 2>/dev/null
	echo "$cyc" | grep -q 'already hooked' || bad="$bad $mode:redirected"
	case $mode in
	malloc) echo "$scan" | grep -q '^coverage: partial (.*pymalloc_debug' || bad="$bad $mode:coverage" ;;
	*) echo "$scan" | grep -q '^coverage: full' || bad="$bad $mode:coverage" ;;
	esac
done
if [ -z "$bad" ]; then
	ok "redirect_refuses_hooked (PYTHONMALLOC=malloc, pymalloc_debug, -X tracemalloc)"
else
	notok redirect_refuses_hooked "$bad"
fi

# ---- 8-byte /proc/PID/mem writes seen whole ----------------------------------------------
out=$("$OUT/tear" 2000000)
if echo "$out" | grep -q 'torn 0$'; then
	ok "proc_mem_write_whole ($out)"
else
	notok proc_mem_write_whole "$out"
fi

# ---- 100 apply/restore cycles on a busy multi-threaded target ------------------------
N=4000000
timeout 120 $PY tests/redirect/busy.py $N >"$TMP/busy.ref" 2>&1
start_bg timeout 120 $PY tests/redirect/busy.py $N "$TMP/busy.ready" >"$TMP/busy.out" 2>&1
if wait_file "$TMP/busy.ready"; then
	cyc=$(timeout 100 $D cycle "$(cat "$TMP/busy.ready")" 100 2>&1)
	wait $bg
	rc=$?
	if ! echo "$cyc" | grep -q '^cycles 100 ok'; then
		notok redirect_100_cycles "$cyc"
	elif [ $rc -ne 0 ]; then
		notok redirect_100_cycles "target exited with $rc: $(head -c 300 "$TMP/busy.out")"
	elif ! cmp -s "$TMP/busy.ref" "$TMP/busy.out"; then
		notok redirect_100_cycles "output differs from the untraced run"
	else
		ok "redirect_100_cycles (4 threads, output identical, pointers restored; $cyc)"
	fi
else
	notok redirect_100_cycles "target did not start"
fi

# ---- tmbpf SIGKILLed while redirected: stubs stay, the next run adopts them ------------
N2=2000000
timeout 60 $PY tests/redirect/busy.py $N2 >"$TMP/k.ref" 2>&1
rm -f "$TMP/k.ready"
start_bg timeout 60 $PY tests/redirect/busy.py $N2 "$TMP/k.ready" >"$TMP/k.out" 2>&1
py=$bg
why=""
if wait_file "$TMP/k.ready"; then
	pid=$(cat "$TMP/k.ready")
	$D hold "$pid" >"$TMP/k.hold" &
	hold=$!
	pids+=("$hold")
	for _ in $(seq 100); do
		grep -q '^probe obj free' "$TMP/k.hold" 2>/dev/null && break
		sleep 0.1
	done
	kill -KILL $hold 2>/dev/null
	wait $hold 2>/dev/null
	scan1=$($D scan "$pid" 2>&1)
	cyc=$($D cycle "$pid" 2 2>&1)
	scan2=$($D scan "$pid" 2>&1)
	wait $py
	rc=$?
	echo "$scan1" | grep -q 'leftover 12$' || why="$why no leftover stubs seen;"
	echo "$scan1" | grep -q '^coverage: redirect' || why="$why coverage not redirect;"
	echo "$scan1" | grep -q '^alloc.* malloc 0x6d\|^alloc.* malloc 0x51' || why="$why pointers not stubs after SIGKILL;"
	echo "$cyc" | grep -q '^cycles 2 ok' || why="$why cycle: $cyc;"
	echo "$scan2" | grep -q 'defaults 1/1 guards [1-9][0-9]* .* leftover 0$' || why="$why not back to the defaults;"
	[ $rc -eq 0 ] || why="$why target exit $rc;"
	cmp -s "$TMP/k.ref" "$TMP/k.out" || why="$why output differs;"
else
	why="target did not start"
fi
if [ -z "$why" ]; then
	ok "redirect_after_tmbpf_killed (stubs harmless, adopted by the next run, then restored)"
else
	notok redirect_after_tmbpf_killed "$why"
fi

# ---- the same with the real target discovery (tm_target_open), PIE libpython included --
if [ -x "$OUT/driver_target" ]; then
	for py in $PY "$PYENV_ROOT"/versions/3.{11,12,13}.*/bin/python3.1?; do
		[ -x "$py" ] || continue
		name=redirect_cycles_target_open_$($py -c 'import platform; print(platform.python_version())')
		[ "$py" = $PY ] && name=${name}_debian
		rm -f "$TMP/t.ready"
		timeout 60 "$py" tests/redirect/busy.py 1500000 >"$TMP/t.ref" 2>&1
		start_bg timeout 60 "$py" tests/redirect/busy.py 1500000 "$TMP/t.ready" >"$TMP/t.out" 2>&1
		if ! wait_file "$TMP/t.ready"; then
			notok "$name" "target did not start"
			continue
		fi
		cyc=$(timeout 60 "$OUT/driver_target" cycle "$(cat "$TMP/t.ready")" 20 2>&1)
		wait $bg
		rc=$?
		if echo "$cyc" | grep -q '^cycles 20 ok' && [ $rc -eq 0 ] && cmp -s "$TMP/t.ref" "$TMP/t.out"; then
			ok "$name (20 cycles, output identical; $(echo "$cyc" | sed -n 's/^coverage: //p'))"
		else
			notok "$name" "rc $rc: $(echo "$cyc" | tr '\n' ' ')"
		fi
	done
else
	notok redirect_cycles_target_open "$OUT/driver_target missing (make test builds it)"
fi

# ---- coverage with and without redirect -----------------------------------------------------
if [ ! -f /usr/include/python3.11/Python.h ]; then
	skip redirect_coverage "no /usr/include/python3.11/Python.h: apt-get install python3.11-dev"
	exit 0
fi
if ! ${CC:-cc} -O2 -Wall -Wextra -Werror -shared -fPIC -I/usr/include/python3.11 \
	-o "$OUT/countalloc.so" tests/redirect/countalloc.c 2>"$TMP/cc.err"; then
	notok redirect_coverage "countalloc.c: $(head -c 300 "$TMP/cc.err" | tr '\n' ' ')"
	exit 0
fi
W=20000
export PYTHONHASHSEED=0
COUNTALLOC_DIR=$OUT timeout 60 $PY tests/redirect/workload.py count $W >"$TMP/truth.json"
mkfifo "$TMP/go" "$TMP/ctl" "$TMP/ack"

# probe_run REDIRECT(0|1) -> $TMP/count.out: hits per probed address
probe_run() {
	rm -f "$TMP/ready" "$TMP/hold.out"
	start_bg timeout 60 $PY tests/redirect/workload.py probe $W "$TMP/ready" "$TMP/go" "$TMP/ctl" \
		"$TMP/ack" >"$TMP/probe$1.json"
	local py=$bg hold="" addrs
	wait_file "$TMP/ready" || return 1
	local pid
	pid=$(cat "$TMP/ready")
	if [ "$1" = 1 ]; then
		$D hold "$pid" >"$TMP/hold.out" &
		hold=$!
		pids+=("$hold")
		for _ in $(seq 100); do
			grep -q '^probe obj free' "$TMP/hold.out" 2>/dev/null && break
			grep -q '^apply failed' "$TMP/hold.out" 2>/dev/null && return 1
			sleep 0.1
		done
		addrs=$(awk '/^probe/ { print $7 }' "$TMP/hold.out" | sort -u)
	else
		addrs=$($D scan "$pid" | awk '/^impl/ { print $2 }')
	fi
	# shellcheck disable=SC2086
	timeout 60 $D count "$pid" "$TMP/ctl" "$TMP/ack" $addrs >"$TMP/count.out" &
	local counter=$!
	pids+=("$counter")
	echo go >"$TMP/go"
	wait $py || return 1
	wait $counter || return 1
	# the traced program computes what the untraced one did
	[ "$(cat "$TMP/probe$1.json")" = "$(python3 -c 'import json, sys; print(json.dumps({"acc": json.load(open(sys.argv[1]))["acc"]}))' "$TMP/truth.json")" ] || return 1
	if [ -n "$hold" ]; then
		kill -TERM $hold 2>/dev/null
		wait $hold
	fi
	return 0
}

# ---- restore leaves a pointer someone hooked meanwhile ------------------------------------
rm -f "$TMP/h.ready" "$TMP/h.go1" "$TMP/h.hooked" "$TMP/h.go2"
COUNTALLOC_DIR=$OUT start_bg timeout 60 $PY tests/redirect/workload.py hook $W "$TMP/h.ready" \
	"$TMP/h.go1" "$TMP/h.hooked" "$TMP/h.go2" >"$TMP/h.out" 2>&1
py=$bg
why=""
if wait_file "$TMP/h.ready"; then
	$D hold "$(cat "$TMP/h.ready")" >"$TMP/h.hold" &
	hold=$!
	pids+=("$hold")
	for _ in $(seq 100); do
		grep -q '^probe obj free' "$TMP/h.hold" 2>/dev/null && break
		sleep 0.1
	done
	touch "$TMP/h.go1"
	wait_file_exists "$TMP/h.hooked" || why="$why target did not hook;"
	kill -TERM $hold 2>/dev/null
	wait $hold
	grep -q '^restored: .*changed .* left as is' "$TMP/h.hold" || why="$why $(tail -1 "$TMP/h.hold");"
	touch "$TMP/h.go2"
	wait $py || why="$why target failed: $(head -c 200 "$TMP/h.out");"
	acc=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["acc"])' "$TMP/truth.json")
	grep -q "\"acc\": $acc, \"hooked_calls\": true" "$TMP/h.out" || why="$why output $(cat "$TMP/h.out");"
else
	why="target did not start"
fi
if [ -z "$why" ]; then
	ok "redirect_restore_leaves_foreign_hook (hook installed over our stubs kept; target fine)"
else
	notok redirect_restore_leaves_foreign_hook "$why"
fi

# Sum hits per function kind from count.out and the scan's impl table.
ratio() {
	python3 - "$TMP/truth.json" "$TMP/count.out" "$TMP/map.txt" "$TMP/hold.out" <<'EOF'
import json, sys
truth = json.load(open(sys.argv[1]))
top, every = truth["top"], truth["all"]
# expected: top-level mem/obj calls + every raw call (all nested here), as the probes see them
exp_alloc = sum(top[1][:3]) + sum(top[2][:3]) + sum(every[0][:3])
exp_free = top[1][3] + top[2][3] + every[0][3]
kind = {}
for line in open(sys.argv[3]):
    addr, fn = line.split()
    kind[int(addr, 16)] = fn
# with redirect, each probe's entry (a stub in the padding) is named by the
# hold's "probe DOMAIN FN impl ADDR entry ADDR ..." line
try:
    for line in open(sys.argv[4]):
        f = line.split()
        if len(f) >= 7 and f[0] == "probe" and f[6].startswith("0x"):
            kind[int(f[6], 16)] = f[2]
except OSError:
    pass
alloc = free = 0
for line in open(sys.argv[2]):
    f = line.split()
    if f[0] != "count":
        continue
    fn = kind.get(int(f[1], 16), "malloc")  # a jmp stub is the malloc entry
    hits = int(f[5])
    if fn == "free":
        free += hits
    else:
        alloc += hits
print("%d %d %d %d %.4f %.4f" % (alloc, exp_alloc, free, exp_free, alloc / exp_alloc, free / exp_free))
EOF
}

start_bg $PY -c 'import time; time.sleep(60)'
sleep 0.3
$D scan $bg | awk '/^impl/ { print $2, $3 }' >"$TMP/map.txt"
kill $bg 2>/dev/null

if probe_run 0; then
	read -r a0 ea0 f0 ef0 ra0 rf0 <<<"$(ratio)"
else
	ra0=""
fi
if probe_run 1; then
	read -r a1 ea1 f1 ef1 ra1 rf1 <<<"$(ratio)"
else
	ra1=""
fi
if [ -z "$ra0" ] || [ -z "$ra1" ]; then
	notok redirect_coverage "probe run failed: $(cat "$TMP/hold.out" "$TMP/count.out" 2>/dev/null | tr '\n' ' ')"
	exit 0
fi
echo "# coverage without redirect: allocs $a0/$ea0 ($ra0), frees $f0/$ef0 ($rf0)"
echo "# coverage with redirect:    allocs $a1/$ea1 ($ra1), frees $f1/$ef1 ($rf1)"
# Frees may exceed: _PyObject_Realloc calls _PyObject_Free directly when it
# moves a block (nested, dropped by capture's depth guard).
if python3 -c "import sys; sys.exit(not (0.99 <= $ra1 <= 1.01 and 0.99 <= $rf1 <= 1.05 and $ra0 < 0.5))"; then
	ok "redirect_coverage (allocs $ra1 with redirect vs $ra0 without; frees $rf1 vs $rf0)"
else
	notok redirect_coverage "allocs $ra1 / frees $rf1 with redirect, $ra0 / $rf0 without"
fi

# A suite reports failures as "not ok" lines; reaching this line means it ran to its end.
exit 0
