#!/usr/bin/env bash
# A pre-fork web server, system-wide (issue 13's acceptance, root): Debian's
# gunicorn with 4 sync workers serves tests/e2e/live/leaky_app.py (Flask on
# Debian's python3.11) in a cgroup of the test's own, traced from start-up by
# one `tmbpf snapshot --cgroup CG` (master caught at exec, workers followed
# at fork), under 30 s of wrk load on /leak and /ok. SIGUSR1 at t=5 s and
# t=25 s writes one snapshot per process; the workers' snapshots of each
# moment are merged into M1 and M2. Checked: the leaking line is M1's and
# M2's top statistic; the merge's figures for it are the sums of the
# workers'; `tmbpf compare M1 M2` puts it first, growing by as many blocks as
# the app itself counted /leak requests between the moments; responses are
# the untraced ones (the same /fixed body, no non-2xx or socket error under
# wrk); 0 events lost. Requests/s traced and untraced are reported, not
# judged.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/e2e/lib/cgroup.bash
top=$PWD
app_dir=$top/tests/e2e/live
work=$(mktemp -d "${TMPDIR:-/tmp}"/tmbpf-gunicorn.XXXXXX)
cg=
tm=
gu=
cleanup() {
	[ -n "$tm" ] && kill -9 "$tm" 2>/dev/null
	for p in $(jobs -p); do kill -9 "$p" 2>/dev/null; done
	test_cgroup_remove
	if [ -n "${KEEP_WORK:-}" ]; then echo "# gunicorn: work kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 1' TERM INT
LOAD_S=30      # wrk's run under tracing
PLAIN_S=5      # ... and untraced (requests/s only; each /leak keeps 64 KiB)
SNAP1_S=5      # SIGUSR1 moments, seconds into the load
SNAP2_S=25
WORKERS=4
py=/usr/bin/python3

missing() { # not ok in CI, a skip with the reason elsewhere
	if [ "${CI:-}" = true ]; then echo "not ok - gunicorn: $1"; else echo "skip - gunicorn: $1"; fi
	exit 0
}
[ "$(id -u)" -eq 0 ] || missing "needs root for BPF"
for b in /usr/bin/gunicorn /usr/bin/wrk /usr/bin/curl "$py"; do
	[ -x "$b" ] || missing "$b not found (apt-get install -y gunicorn python3-flask wrk curl)"
done
"$py" -c 'import flask' 2>/dev/null || missing "Debian's python3-flask not installed (apt-get install -y python3-flask)"

test_cgroup_make gunicorn || exit 0

leak_line=$(grep -n '# LEAK$' "$app_dir/leaky_app.py" | cut -d: -f1)
leak_key="$app_dir/leaky_app.py:$leak_line"
# Nothing written outside $work: no .pyc next to the app, gunicorn's
# heartbeat files in $work.
export PYTHONDONTWRITEBYTECODE=1

free_port() {
	"$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_gunicorn() { # start_gunicorn TAG: in the cgroup; sets gu, port
	local d=$work/$1
	mkdir -p "$d/counts"
	port=$(free_port)
	(
		echo "$BASHPID" > "$cg/cgroup.procs"
		cd "$app_dir" || exit 1
		TM_APP_COUNT_DIR=$d/counts exec /usr/bin/gunicorn --workers "$WORKERS" \
			--worker-class sync --bind "127.0.0.1:$port" --worker-tmp-dir "$d" \
			--graceful-timeout 5 leaky_app:app
	) > "$d/gunicorn.log" 2>&1 &
	gu=$!
	for _ in $(seq 300); do
		[ "$(grep -c 'Booting worker' "$d/gunicorn.log")" -ge "$WORKERS" ] &&
			curl -sf "http://127.0.0.1:$port/fixed" -o /dev/null && return 0
		kill -0 "$gu" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

stop_gunicorn() {
	kill -TERM "$gu" 2>/dev/null
	for _ in $(seq 100); do kill -0 "$gu" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$gu" 2>/dev/null
	wait "$gu" 2>/dev/null
	gu=
}

# One /fixed body and the load: one wrk per route, side by side. The
# moments are kept to the clock of the load's start (writing the snapshots
# of moment 1 takes seconds: moment 2 must not drift by as much).
now() { date +%s.%N; }
sleep_until() { # sleep_until EPOCH
	sleep "$(awk -v t="$1" -v n="$(now)" 'BEGIN { d = t - n; printf "%.3f", (d > 0 ? d : 0) }')"
}
fetch_and_load() { # fetch_and_load TAG SECONDS [hook run at SNAP1_S and SNAP2_S]
	local d=$work/$1 s=$2 hook=${3:-} wl wo t0
	curl -sf "http://127.0.0.1:$port/fixed" -o "$d/fixed.body"
	t0=$(now)
	/usr/bin/wrk -t1 -c4 -d"${s}s" "http://127.0.0.1:$port/leak" > "$d/wrk.leak" 2>&1 &
	wl=$!
	/usr/bin/wrk -t1 -c4 -d"${s}s" "http://127.0.0.1:$port/ok" > "$d/wrk.ok" 2>&1 &
	wo=$!
	if [ -n "$hook" ]; then
		sleep_until "$(awk -v t="$t0" -v s="$SNAP1_S" 'BEGIN { printf "%.3f", t + s }')"
		$hook 1
		curl -sf "http://127.0.0.1:$port/fixed" -o "$d/fixed.during"
		sleep_until "$(awk -v t="$t0" -v s="$SNAP2_S" 'BEGIN { printf "%.3f", t + s }')"
		$hook 2
	fi
	wait "$wl" "$wo"
}

rps() { # the sum of Requests/sec of a run's two wrk reports
	awk '/^Requests\/sec:/ { s += $2 } END { printf "%.0f", s }' "$1/wrk.leak" "$1/wrk.ok"
}

wrk_errors() { # wrk's error lines of a run, if any
	grep -hE 'Non-2xx|Socket errors' "$1/wrk.leak" "$1/wrk.ok" | tr -s ' ' | tr '\n' ';'
}

# The untraced reference: the same server and load, nothing traced.
if ! start_gunicorn plain; then
	echo "not ok - gunicorn: the untraced server did not start: $(tail -2 "$work/plain/gunicorn.log" | tr '\n' ' ')"
	exit 0
fi
fetch_and_load plain "$PLAIN_S"
stop_gunicorn
plain_rps=$(rps "$work/plain")

# --max-stacks: every worker imports Flask after its fork, so its start-up
# stacks name code objects of its own: 4 workers intern ~4 times one
# process's start-up stacks, more than the 213854 stacks of 10 frames the
# default budget (256m) gives; once full, the requests' new stacks are lost
# (stacks_full). The stacks map is not preallocated: unused entries cost
# nothing.
mkdir -p "$work/snaps"
./tmbpf snapshot --cgroup "$cgpath" --frames 10 --max-stacks 1048576 ${TM_OPTS:-} -o "$work/snaps/%p-%n.tmbpf" 2> "$work/tmbpf.err" &
tm=$!
for _ in $(seq 100); do grep -q "processes traced" "$work/tmbpf.err" && break; sleep 0.1; done
if ! grep -q "processes traced" "$work/tmbpf.err"; then
	echo "not ok - gunicorn: tmbpf did not start: $(tail -1 "$work/tmbpf.err")"
	exit 0
fi
if ! start_gunicorn traced; then
	echo "not ok - gunicorn: the traced server did not start: $(tail -2 "$work/traced/gunicorn.log" | tr '\n' ' ')"
	exit 0
fi
master=$gu
workers=$(grep -o 'Booting worker with pid: [0-9]*' "$work/traced/gunicorn.log" | awk '{ print $NF }' | tr '\n' ' ')
procs=$(echo "$master $workers" | wc -w)
for _ in $(seq 100); do
	n=0
	for p in $master $workers; do grep -q "tracing PID $p " "$work/tmbpf.err" && n=$((n + 1)); done
	[ "$n" -eq "$procs" ] && break
	sleep 0.1
done
order=$(sed -n 's/^tmbpf: tracing PID \([0-9]*\) .*/\1/p' "$work/tmbpf.err" | tr '\n' ' ')
caught=0
for p in $master $workers; do grep -q "tracing PID $p .*from its start" "$work/tmbpf.err" && caught=$((caught + 1)); done
if [ "$caught" -eq "$procs" ]; then
	echo "ok - gunicorn: the master and its $WORKERS workers traced from their start (exec, fork)"
else
	echo "not ok - gunicorn: $caught of $procs processes traced from their start: $(grep -E "PID ($(echo $master $workers | tr ' ' '|'))" "$work/tmbpf.err" | tr '\n' ' ')"
fi

# SIGUSR1 writes <pid>-000N.tmbpf (%n is 4 digits) for every traced
# process, one after the other in the order they were traced (master
# first). A worker's /leak count at its snapshot lies between a reading made
# before its snapshot began (its predecessor's file not there yet after the
# reading) and one made after its file was there (+1: a request between the
# append and the count), so each worker is bracketed by its own snapshot's
# time, not by the seconds all five take.
worker_count() { stat -c %s "$work/traced/counts/$1" 2>/dev/null || echo 0; }
snap_of() { echo "$work/snaps/$1-000$2.tmbpf"; }
moment() { # moment N: writes countN.lo and countN.hi (sums over the workers)
	local n=$1 p q prev=$master lo=0 hi=0 left
	local -A pred low high cnt seen
	for p in $order; do [ "$p" = "$master" ] || pred[$p]=$prev; prev=$p; done
	for p in $workers; do low[$p]=$(worker_count "$p"); done
	kill -USR1 "$tm"
	left=$WORKERS
	for _ in $(seq 1500); do
		for p in $workers; do seen[$p]=0; [ -f "$(snap_of "$p" "$n")" ] && seen[$p]=1; done
		for p in $workers; do cnt[$p]=$(worker_count "$p"); done
		for p in $workers; do
			q=${pred[$p]}
			[ -f "$(snap_of "$q" "$n")" ] || low[$p]=${cnt[$p]}
			if [ "${seen[$p]}" = 1 ] && [ -z "${high[$p]:-}" ]; then
				high[$p]=$((cnt[$p] + 1))
				left=$((left - 1))
			fi
		done
		[ "$left" -eq 0 ] && break
		sleep 0.02
	done
	for p in $workers; do lo=$((lo + low[$p])) hi=$((hi + ${high[$p]:-999999})); done
	echo "$lo" > "$work/count$n.lo"
	echo "$hi" > "$work/count$n.hi"
}
fetch_and_load traced "$LOAD_S" moment
stop_gunicorn
sleep 0.5
kill -TERM "$tm"
wait "$tm"
trc=$?
tm=
traced_rps=$(rps "$work/traced")

grep -q "0 events lost in all" "$work/tmbpf.err" &&
	echo "ok - gunicorn: 0 events lost over all processes (tmbpf exited $trc)" ||
	echo "not ok - gunicorn: loss or failure (exit $trc): $(grep -E 'dropped|lost|failed' "$work/tmbpf.err" | head -3 | tr '\n' ' ')"

# Responses: the /fixed bodies of both runs, wrk's errors under tracing.
if [ -s "$work/plain/fixed.body" ] && cmp -s "$work/plain/fixed.body" "$work/traced/fixed.body" &&
	cmp -s "$work/plain/fixed.body" "$work/traced/fixed.during"; then
	echo "ok - gunicorn: /fixed under tracing (before and during the load) is the untraced body ($(wc -c < "$work/plain/fixed.body") bytes)"
else
	echo "not ok - gunicorn: /fixed under tracing differs from the untraced body"
fi
errs=$(wrk_errors "$work/traced")
leak_reqs=$(awk '/requests in/ { print $1 }' "$work/traced/wrk.leak")
ok_reqs=$(awk '/requests in/ { print $1 }' "$work/traced/wrk.ok")
if [ -z "$errs" ] && [ "${leak_reqs:-0}" -gt 0 ] && [ "${ok_reqs:-0}" -gt 0 ]; then
	echo "ok - gunicorn: wrk under tracing: $leak_reqs /leak and $ok_reqs /ok requests, no non-2xx response, no socket error"
else
	echo "not ok - gunicorn: wrk under tracing: ${leak_reqs:-?} /leak, ${ok_reqs:-?} /ok requests; $errs"
fi
echo "# gunicorn: requests/s untraced $plain_rps, traced $traced_rps (2 wrk x 4 connections, $WORKERS sync workers; untraced: $(e=$(wrk_errors "$work/plain"); echo "${e:-no wrk error}"))"

# Merge the workers' snapshots of each moment. Not the master's: it serves
# no request, and its blocks of before the fork are already in every worker
# (each child is given its parent's live blocks at the fork), so adding it
# would count gunicorn's start-up once more without telling anything about
# what the workers hold.
line_of() { # line_of STATS_JSON: "size count" of the leaking line
	"$py" - "$1" "$leak_key" <<-'EOF'
	import json, sys
	doc = json.load(open(sys.argv[1]))
	rows = doc["statistics"] if isinstance(doc, dict) else doc
	for r in rows:
	    f = r["traceback"][-1] if "traceback" in r else r["frames"][-1]
	    if "%s:%d" % (f["filename"], f["lineno"]) == sys.argv[2]:
	        print(r["size"], r["count"])
	        break
	else:
	    print("0 0")
	EOF
}
for n in 1 2; do
	files=
	for p in $workers; do files="$files $work/snaps/$p-000$n.tmbpf"; done
	# shellcheck disable=SC2086
	if ! ./tmbpf merge $files -o "$work/M$n.tmbpf" 2> "$work/merge$n.err"; then
		echo "not ok - gunicorn: merge of moment $n failed: $(tail -1 "$work/merge$n.err")"
		continue
	fi
	./tmbpf stats "$work/M$n.tmbpf" --limit 1 > "$work/M$n.top" 2> "$work/M$n.top.err"
	if grep -q "^$leak_key: " "$work/M$n.top"; then
		echo "ok - gunicorn: M$n's top statistic is the leaking line: $(head -1 "$work/M$n.top")"
	else
		echo "not ok - gunicorn: M$n's top statistic is not $leak_key: $(head -1 "$work/M$n.top")"
	fi
	sum_size=0 sum_count=0
	for p in $workers; do
		./tmbpf stats "$work/snaps/$p-000$n.tmbpf" --limit 0 --json > "$work/$p-$n.json" 2>/dev/null
		read -r s c < <(line_of "$work/$p-$n.json")
		sum_size=$((sum_size + s)) sum_count=$((sum_count + c))
	done
	./tmbpf stats "$work/M$n.tmbpf" --limit 0 --json > "$work/M$n.json" 2>/dev/null
	read -r m_size m_count < <(line_of "$work/M$n.json")
	echo "$m_count" > "$work/M$n.count"
	if [ "$m_size" -gt 0 ] && [ "$m_size" = "$sum_size" ] && [ "$m_count" = "$sum_count" ]; then
		echo "ok - gunicorn: M$n's leaking line, size=$m_size B count=$m_count, is the sum of the $WORKERS workers'"
	else
		echo "not ok - gunicorn: M$n's leaking line size=$m_size count=$m_count, the workers' sum size=$sum_size count=$sum_count"
	fi
done

# compare M1 M2: the leaking line first, grown by one block per /leak
# request between the moments: the diff must lie within the workers'
# brackets (moment above). The list's own array is one block on that line
# in both snapshots, so it adds nothing to the count diff.
./tmbpf compare "$work/M1.tmbpf" "$work/M2.tmbpf" --limit 1 > "$work/compare.top" 2> "$work/compare.err"
first=$(head -1 "$work/compare.top")
size_diff=$(echo "$first" | sed -n 's/.*size=[^(]*(\([-+][^)]*\)).*/\1/p')
count_diff=$(echo "$first" | sed -n 's/.*count=[0-9]* (\([-+][0-9]*\)).*/\1/p')
lo=$(( $(cat "$work/count2.lo") - $(cat "$work/count1.hi") ))
hi=$(( $(cat "$work/count2.hi") - $(cat "$work/count1.lo") ))
if [[ $first == "$leak_key: "* ]] && [[ $size_diff == +* ]] && [ -n "$count_diff" ] &&
	[ "${count_diff#+}" -ge "$lo" ] && [ "${count_diff#+}" -le "$hi" ]; then
	echo "ok - gunicorn: compare M1 M2 puts the leaking line first, size $size_diff, count $count_diff (the app counted $lo..$hi /leak requests between the moments): $first"
else
	echo "not ok - gunicorn: compare M1 M2: '$first' (expected $leak_key first, a positive size diff, count diff in $lo..$hi)"
fi
exit 0
