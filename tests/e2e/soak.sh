#!/usr/bin/env bash
# Soak (root, issue 13): one `tmbpf snapshot --cgroup CG --sample-bytes 512k
# --every E --keep 5` runs SOAK_SECONDS (default 120; the long version is
# SOAK_SECONDS=1800) while a changing set of CPython processes (pyenv 3.11,
# 3.12, 3.13 and Debian's python3.11) starts and ends in a cgroup of the
# test's own: 3-8 alive at any time, each living 2-20 s, ending by
# finalization, os._exit or SIGKILL, plus one resident process living the
# whole run (so --keep rotates). Checks: tmbpf's RSS and open fds stay flat
# (mean of the first 20 % after the warm-up vs the last 20 %, within 5 %),
# 0 events lost, every process's last snapshot written at its end and
# readable by `tmbpf stats` (at most 5 files each), and every output equal
# to an untraced run of the same workload variant.
# E (SOAK_EVERY) defaults to 60 s for 30 minutes and scales with the run,
# at least 15 s (15 for 2 minutes: 8 periodic rounds, the resident's files
# rotate). SOAK_SEED makes another schedule; SOAK_TMBPF_ARGS="-v -v" adds
# tmbpf options (debugging).
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/e2e/lib/cgroup.bash
top=$PWD
progs=$top/tests/e2e/live # not programs/: the differential suites run every file there
work=$(mktemp -d ${TMPDIR:-/tmp}/tmbpf-soak.XXXXXX)
cg=
tm=
trap test_cgroup_cleanup EXIT
trap 'exit 1' INT TERM
[ -n "${KEEP_WORK:-}" ] && trap - EXIT
PYENV_ROOT=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
SOAK_SECONDS=${SOAK_SECONDS:-120}
every=${SOAK_EVERY:-$((SOAK_SECONDS * 60 / 1800))}
[ "$every" -lt 15 ] && every=15
RANDOM=${SOAK_SEED:-13}

if [ "$(id -u)" -ne 0 ]; then
	echo "skip - soak: needs root for BPF"
	exit 0
fi
interpreters=()
for v in 3.11 3.12 3.13; do
	p=$(ls -d "$PYENV_ROOT"/versions/$v.*/bin/python$v 2>/dev/null | head -1)
	[ -n "$p" ] && interpreters+=("$p")
done
[ -x /usr/bin/python3.11 ] && interpreters+=(/usr/bin/python3.11)
if [ ${#interpreters[@]} -lt 4 ]; then
	echo "not ok - soak: needs pyenv 3.11-3.13 and Debian's python3.11 (found ${#interpreters[@]})"
	exit 0
fi

test_cgroup_make soak || exit 0

# Variants: every interpreter with every ending; the seed is the variant's
# number. Untraced outputs first, one at a time (SECONDS 0: the output does
# not depend on it; "kill" is killed once its line is out).
ends=(normal exit kill)
nv=0
for py in "${interpreters[@]}"; do
	for e in "${ends[@]}"; do
		echo "$py $e" > "$work/variant$nv"
		if [ "$e" = kill ]; then
			(cd "$progs" && exec "$py" soak_worker.py "$nv" 0 kill) > "$work/plain$nv.out" 2>&1 &
			pid=$!
			for i in $(seq 300); do [ -s "$work/plain$nv.out" ] && break; sleep 0.1; done
			kill -9 "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
		else
			(cd "$progs" && timeout 120 "$py" soak_worker.py "$nv" 0 "$e") > "$work/plain$nv.out" 2>&1
		fi
		nv=$((nv + 1))
	done
done

mkdir -p "$work/snaps"
./tmbpf snapshot ${SOAK_TMBPF_ARGS:-} --cgroup "$cgpath" --sample-bytes 512k --every "$every" --keep 5 \
	-o "$work/snaps/%p-%n.tmbpf" 2> "$work/tmbpf.err" &
tm=$!
for i in $(seq 100); do grep -q "processes traced" "$work/tmbpf.err" && break; sleep 0.1; done
if ! grep -q "processes traced" "$work/tmbpf.err"; then
	echo "not ok - soak: tmbpf did not start: $(tail -1 "$work/tmbpf.err")"
	exit 0
fi

idle0=$(ls "/proc/$tm/fd" | wc -l) # nothing traced yet
now() { local s; read -r s _ < /proc/uptime; echo "${s%.*}${s#*.}"; } # centiseconds
t0=$(now)
# One line per process started: N PID VARIANT DEADLINE(cs) STATE [RC].
started=0
declare -A pid_of variant_of deadline_of state_of
start_one() { # start_one VARIANT SECONDS
	local k=$started py e
	read -r py e < "$work/variant$1"
	(
		echo "$BASHPID" > "$cg/cgroup.procs"
		cd "$progs" && exec "$py" soak_worker.py "$1" "$2" "$e"
	) > "$work/traced$k.out" 2>&1 &
	pid_of[$k]=$!
	variant_of[$k]=$1
	deadline_of[$k]=$(( $(now) + $2 * 100 ))
	state_of[$k]=alive
	started=$((started + 1))
}
ended() { # the process ended (reaped by bash, or a zombie not yet)
	local st
	kill -0 "$1" 2>/dev/null || return 0
	read -r _ _ st _ < "/proc/$1/stat" 2>/dev/null || return 0
	[ "$st" = Z ]
}
alive=0
reap() { # collect the ended, SIGKILL the "kill" ones past their time
	local k t=$(now) e
	alive=0
	for k in "${!state_of[@]}"; do
		[ "${state_of[$k]}" = alive ] || continue
		if ended "${pid_of[$k]}"; then
			wait "${pid_of[$k]}" 2>/dev/null
			echo "$?" > "$work/rc$k"
			state_of[$k]=done
			continue
		fi
		read -r _ e < "$work/variant${variant_of[$k]}"
		if [ "$t" -ge "${deadline_of[$k]}" ] && [ "$e" = kill ] && [ -s "$work/traced$k.out" ]; then
			kill -9 "${pid_of[$k]}"
		elif [ "$t" -ge $((deadline_of[$k] + 6000)) ]; then
			echo "overdue" > "$work/overdue$k"
			kill -9 "${pid_of[$k]}"
		fi
		alive=$((alive + 1))
	done
}
sample() {
	local rss fds
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$tm/status" 2>/dev/null)
	fds=$(ls "/proc/$tm/fd" 2>/dev/null | wc -l)
	[ -n "$rss" ] && echo "$(( ($(now) - t0) / 100 )) $rss $fds $alive" >> "$work/samples"
}

# Bash's notices of the jobs we SIGKILL go to a file meanwhile.
exec 3>&2 2>> "$work/driver.err"
# The run: the resident first, then a start every tick while fewer than 3
# are alive, one in three ticks while fewer than 8.
start_one 0 "$SOAK_SECONDS"
next_sample=0
while [ $(( $(now) - t0 )) -lt $((SOAK_SECONDS * 100)) ]; do
	reap
	if [ "$alive" -lt 4 ] || { [ "$alive" -lt 9 ] && [ $((RANDOM % 3)) = 0 ]; }; then
		start_one $((RANDOM % nv)) $((2 + RANDOM % 19))
	fi
	if [ $(( $(now) - t0 )) -ge "$next_sample" ]; then
		sample
		next_sample=$((next_sample + 200))
	fi
	sleep 0.5
done
# The end: no more starts; each ends its way (at most 20 s more).
for i in $(seq 160); do
	reap
	[ "$alive" = 0 ] && break
	sleep 0.5
done
reap
exec 2>&3 3>&-
for i in $(seq 50); do
	[ "$(grep -cE '^tmbpf: PID [0-9]+ .* (exited|finalized)$' "$work/tmbpf.err")" -ge "$started" ] && break
	sleep 0.2
done
sleep 1
idle1=$(ls "/proc/$tm/fd" | wc -l) # every process ended
kill -TERM "$tm"
wait "$tm"
trc=$?
tm=

# Memory and fds: the warm-up is the first catch of each interpreter
# binary (tmbpf reads its ELF, layouts and places probes once per binary)
# and the first three periodic rounds, by which tmbpf's heap has met most
# processes alive at once and their biggest snapshots (the writer's, zlib's
# and the symbol tables' buffers; seen: RSS steps up to then, in 2-minute
# runs, then stays within a few hundred KiB): max(3 E, 10 % of the run).
warm=$((3 * every))
[ $((SOAK_SECONDS / 10)) -gt "$warm" ] && warm=$((SOAK_SECONDS / 10))
# tmbpf holds a few fds per traced process (about 4), so the fds of a window
# follow how many are alive then: each window's mean is also given at the
# run's mean number alive, by the least-squares slope of fds on alive.
read -r rss1 rss2 fd1 fd2 al1 al2 slope adj1 adj2 ns <<< "$(awk -v w="$warm" -v T="$SOAK_SECONDS" '
	{ t[NR] = $1; r[NR] = $2; f[NR] = $3; l[NR] = $4 }
	END {
		span = T - w; a = w + span / 5; b = T - span / 5
		for (i = 1; i <= NR; i++) {
			if (t[i] < w) continue
			n++; sl += l[i]; sf += f[i]; sll += l[i] * l[i]; slf += l[i] * f[i]
			if (t[i] <= a) { r1 += r[i]; f1 += f[i]; l1 += l[i]; n1++ }
			if (t[i] >= b) { r2 += r[i]; f2 += f[i]; l2 += l[i]; n2++ }
		}
		if (!n1 || !n2) { print "0 0 0 0 0 0 0 0 0 0"; exit }
		v = sll / n - (sl / n) ^ 2
		k = v > 0 ? (slf / n - sl / n * sf / n) / v : 0
		m = sl / n
		printf "%d %d %.1f %.1f %.1f %.1f %.2f %.1f %.1f %d\n", r1 / n1, r2 / n2,
			f1 / n1, f2 / n2, l1 / n1, l2 / n2, k,
			f1 / n1 - k * (l1 / n1 - m), f2 / n2 - k * (l2 / n2 - m), n1 + n2
	}' "$work/samples")"
# RSS slack: 512 KiB, a few pages of malloc arenas and of the per-process
# tables (up to 9 processes, each a slot and its kept file names) that grow
# and shrink with how many are alive when the means are taken.
slack=512
if [ "$ns" -gt 0 ] && awk -v a="$rss1" -v b="$rss2" -v s="$slack" \
	'BEGIN { d = b - a; if (d < 0) d = -d; exit !(d <= a * 0.05 + s) }'; then
	echo "ok - soak: tmbpf RSS flat: $rss1 KiB (first 20 % after a $warm s warm-up) vs $rss2 KiB (last 20 %), within 5 % + $slack KiB"
else
	echo "not ok - soak: tmbpf RSS grew: $rss1 KiB vs $rss2 KiB ($ns samples, warm-up $warm s)"
fi
if [ "$ns" -gt 0 ] && [ "$idle1" -le "$idle0" ] && awk -v a="$adj1" -v b="$adj2" \
	'BEGIN { d = b - a; if (d < 0) d = -d; exit !(d <= a * 0.05) }'; then
	echo "ok - soak: tmbpf open fds flat: $fd1 with $al1 alive (first 20 %) vs $fd2 with $al2 (last 20 %); $adj1 vs $adj2 at the same number alive ($slope per process), within 5 %; $idle0 before the first process, $idle1 after the last"
else
	echo "not ok - soak: tmbpf open fds changed: $fd1 with $al1 alive vs $fd2 with $al2 ($adj1 vs $adj2 at the same number, $slope per process); $idle0 before the first process, $idle1 after the last"
fi

nsnap=$(grep -c "^tmbpf: wrote $work/snaps/" "$work/tmbpf.err")
if [ "$trc" -eq 0 ] && grep -q " 0 events lost in all" "$work/tmbpf.err" &&
	! grep -q "dropped" "$work/tmbpf.err"; then
	echo "ok - soak: tmbpf exited 0, 0 events lost over $started processes, $nsnap snapshots written (every $every s, keep 5)"
else
	echo "not ok - soak: tmbpf exited $trc: $(grep -E 'dropped|lost|failed' "$work/tmbpf.err" | head -3 | tr '\n' ' ')"
fi

# Each process: traced, its end seen, the file written then is its last
# and reads back, at most 5 kept; the output and status are the untraced
# variant's. The PIDs wrap on a busy host (pid_max 32768): a PID started
# again names a new process whose files (%p-%n, %n from 1 again) replace
# the earlier one's, so the log is read per incarnation and the files
# only of PIDs used once are compared with it.
declare -A uses nth_of
for k in $(seq 0 $((started - 1))); do
	nth_of[$k]=${uses[${pid_of[$k]}]:-0}
	uses[${pid_of[$k]}]=$((nth_of[$k] + 1))
done
bad_snap=0 bad_out=0 rotated=0 late=0 reused=0
for k in $(seq 0 $((started - 1))); do
	pid=${pid_of[$k]}
	v=${variant_of[$k]}
	read -r py e < "$work/variant$v"
	tag="$(basename "$py") $e (PID $pid, #$k)"
	case $e in normal) want=0 ;; exit) want=3 ;; kill) want=137 ;; esac
	rc=$(cat "$work/rc$k" 2>/dev/null)
	if [ -e "$work/overdue$k" ] || [ "$rc" != "$want" ] || ! cmp -s "$work/plain$v.out" "$work/traced$k.out"; then
		bad_out=$((bad_out + 1))
		[ "$bad_out" -le 5 ] && echo "not ok - soak $tag: status ${rc:-?} (want $want)$([ -e "$work/overdue$k" ] && echo ', overdue'), output $(cmp -s "$work/plain$v.out" "$work/traced$k.out" && echo same || echo differs)"
	fi
	files=$(ls "$work/snaps/$pid"-*.tmbpf 2>/dev/null | wc -l)
	last=$(ls "$work/snaps/$pid"-*.tmbpf 2>/dev/null | tail -1)
	# Its incarnation in the log: "traced from-start at-end-file" (the
	# write at an end may nest others' ends: the file is matched by PID).
	read -r traced from_start at_end <<< "$(awk -v t="tmbpf: tracing PID $pid " -v n="${nth_of[$k]}" \
		-v p="tmbpf: PID $pid " -v f="tmbpf: wrote $work/snaps/$pid-" '
		index($0, t) == 1 { if (seg++ == n) { on = 1; fs = /from its start/ } else if (on) exit; next }
		on && index($0, p) == 1 && / (exited|finalized)$/ { seen = 1; next }
		on && seen && index($0, f) == 1 { ae = $3; exit }
		END { printf "%d %d %s\n", on, fs, ae == "" ? "-" : ae }' "$work/tmbpf.err")"
	[ "$from_start" = 1 ] || late=$((late + 1))
	[ "${uses[$pid]}" -gt 1 ] && reused=$((reused + 1))
	why=
	if [ "$traced" != 1 ]; then
		why="never traced"
	elif [ "$at_end" = - ]; then
		why="no snapshot at its end ($(grep "PID $pid " "$work/tmbpf.err" | tail -2 | tr '\n' ' '))"
	elif [ "${uses[$pid]}" -gt 1 ]; then
		[ "${nth_of[$k]}" -eq $((uses[$pid] - 1)) ] && [ ! -s "$at_end" ] &&
			why="its PID was reused; the snapshot at its end, $at_end, is missing"
	elif [ "$at_end" != "$last" ]; then
		why="the snapshot at its end, $at_end, is not its last file (${last:-none})"
	elif [ "$files" -gt 5 ]; then
		why="$files files kept (--keep 5)"
	elif [ "$k" = 0 ] && [ $((SOAK_SECONDS / every)) -ge 5 ] && [ "$files" -ne 5 ]; then
		why="the resident kept $files files, not 5 (--keep 5)"
	fi
	if [ -z "$why" ] && [ "${nth_of[$k]}" -eq $((uses[$pid] - 1)) ] &&
		! ./tmbpf stats "$at_end" --limit 3 > "$work/stats.out" 2>&1; then
		why="tmbpf stats $at_end: $(tail -1 "$work/stats.out")"
	fi
	[ "$files" -eq 5 ] && rotated=$((rotated + 1))
	if [ -n "$why" ]; then
		bad_snap=$((bad_snap + 1))
		[ "$bad_snap" -le 5 ] && echo "not ok - soak $tag: $why"
	fi
done
# Caught late (its interpreter had started when tmbpf seized it): traced
# like an attach to a running process; counted, not a failure here.
echo "# soak: $late of $started processes caught late, not at their start-up; $reused ran under a reused PID; tmbpf traced $(grep -c '^tmbpf: tracing PID' "$work/tmbpf.err")"
if [ "$bad_snap" -eq 0 ]; then
	echo "ok - soak: all $started processes traced; each one's last snapshot was written at its end and reads back, at most 5 kept ($rotated rotated to 5)"
else
	echo "not ok - soak: $bad_snap of $started processes lack a good last snapshot ($rotated rotated to 5 files)"
fi
if [ "$bad_out" -eq 0 ]; then
	echo "ok - soak: all $started outputs and exit statuses equal the untraced runs of their $nv variants"
else
	echo "not ok - soak: $bad_out of $started processes differ from their untraced variant"
fi
exit 0
