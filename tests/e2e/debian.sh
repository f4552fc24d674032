#!/usr/bin/env bash
# Issue 5: Debian's LTO+PGO, stripped /usr/bin/python3.11.
#  - the differential programs agree with tracemalloc as on pyenv builds
#    (redirect mode on, announced on stderr);
#  - a busy 4-thread target survives 100 attach/detach cycles of tmbpf with
#    redirect: no crash, output identical to an untraced run, and its 12
#    allocator pointers (and ctx values) back to their originals at the end.
set -u
cd "$(dirname "$0")/../.." || exit 1
top=$PWD
PY=/usr/bin/python3.11
work=$(mktemp -d /tmp/tmbpf-debian.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
[ "$(id -u)" -eq 0 ] || { echo "skip - debian: needs root"; exit 0; }
[ -x $PY ] || { echo "not ok - debian: $PY missing (apt-get install python3)"; exit 1; }

# 1. The differential programs, with the same criteria as on pyenv builds.
TMBPF_E2E_ONLY_DEBIAN=1 tests/e2e/differential.sh

# 2. Redirect is announced, and --no-redirect reports the coverage loss instead.
timeout 30 ./tmbpf run --probe-mode entry -o "$work/a.pickle" -- $PY -c 'x = [bytes(10) for _ in range(1000)]' 2> "$work/redir.err"
if grep -qi 'redirect' "$work/redir.err"; then
	echo "ok - debian: redirect announced: $(grep -i -m1 redirect "$work/redir.err")"
else
	echo "not ok - debian: no redirect announcement on stderr: $(tr '\n' '|' < "$work/redir.err")"
fi
timeout 30 ./tmbpf run --probe-mode entry --no-redirect -o "$work/b.pickle" -- $PY -c 'x = [bytes(10) for _ in range(1000)]' 2> "$work/noredir.err"
if grep -qiE 'partial|coverage' "$work/noredir.err"; then
	echo "ok - debian: --no-redirect reports the coverage loss: $(grep -iE -m1 'partial|coverage' "$work/noredir.err")"
else
	echo "not ok - debian: --no-redirect says nothing about coverage: $(tr '\n' '|' < "$work/noredir.err")"
fi

# 3. 100 attach/detach cycles on a busy multi-threaded target.
D=build/tests/redirect/driver
[ -x $D ] || { echo "not ok - debian cycles: $D missing (make test builds it)"; exit 1; }
K=20000
touch "$work/stop-now"
$PY tests/e2e/live/busy_threads.py $K "$work/stop-now" > "$work/plain.out"
$PY tests/e2e/live/busy_threads.py $K "$work/stop" "$work/ready" > "$work/busy.out" & bpid=$!
for _ in $(seq 200); do [ -s "$work/ready" ] && break; sleep 0.05; done
$D scan $bpid | grep '^alloc' > "$work/ptr.before"
fails=0
for i in $(seq 100); do
	kill -0 $bpid 2>/dev/null || break
	timeout 20 ./tmbpf snapshot -p $bpid -o "$work/c.pickle" --frames 5 --duration 0.05 2> "$work/cycle.err" ||
		{ fails=$((fails + 1)); tail -1 "$work/cycle.err" > "$work/lastfail"; }
done
alive=0; kill -0 $bpid 2>/dev/null && alive=1
[ $alive -eq 1 ] && $D scan $bpid | grep '^alloc' > "$work/ptr.after"
if [ $alive -eq 1 ] && [ $fails -eq 0 ] && [ -s "$work/ptr.before" ] && cmp -s "$work/ptr.before" "$work/ptr.after"; then
	echo "ok - debian: 100 attach/detach cycles with redirect: target alive, its 12 allocator pointers restored"
else
	echo "not ok - debian: 100 cycles: alive=$alive failures=$fails pointers $(cmp -s "$work/ptr.before" "$work/ptr.after" && echo same || echo differ) $(cat "$work/lastfail" 2>/dev/null)"
fi
# 4. tmbpf SIGKILLed while redirected: the stubs stay (harmless), and the next
#    tmbpf attaches anyway, adopts them and restores the original pointers.
if kill -0 $bpid 2>/dev/null; then
	./tmbpf snapshot -p $bpid -o "$work/k.pickle" --duration 120 2> "$work/k1.err" & tm=$!
	for _ in $(seq 300); do grep -q '^tmbpf: tracing' "$work/k1.err" && break; sleep 0.1; done
	kill -KILL $tm; wait $tm 2>/dev/null
	$D scan $bpid | grep '^alloc' > "$work/ptr.killed"
	timeout 60 ./tmbpf snapshot -p $bpid -o "$work/k.pickle" --frames 5 --duration 0.5 2> "$work/k2.err"; krc=$?
	$D scan $bpid | grep '^alloc' > "$work/ptr.adopted"
	if ! cmp -s "$work/ptr.before" "$work/ptr.killed" && [ $krc -eq 0 ] &&
		grep -qE '12 already redirected|reusing the stub at [^ ]*: 12 allocator pointers' "$work/k2.err" && cmp -s "$work/ptr.before" "$work/ptr.adopted"; then
		echo "ok - debian: after a SIGKILLed tmbpf, the next one adopts the stubs and restores the pointers"
	else
		echo "not ok - debian: after SIGKILL: exit $krc, pointers $(cmp -s "$work/ptr.before" "$work/ptr.adopted" && echo restored || echo 'not restored'): $(tr '\n' '|' < "$work/k2.err")"
	fi
fi
touch "$work/stop"
wait $bpid; rc=$?
if [ $rc -eq 0 ] && [ -s "$work/plain.out" ] && cmp -s "$work/busy.out" "$work/plain.out"; then
	echo "ok - debian: the cycled target's output equals an untraced run's"
else
	echo "not ok - debian: cycled target exit $rc, output $(cmp -s "$work/busy.out" "$work/plain.out" && echo same || echo differs)"
fi

# A suite reports failures as "not ok" lines; reaching this line means it ran to its end.
exit 0
