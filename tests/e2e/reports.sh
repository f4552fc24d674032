#!/usr/bin/env bash
# Issue 14 on live captures (root): function names in pprof and the flame
# graph for pyenv and Debian LTO captures, --older-than on a program that
# allocates one block a second, tmbpf leaks, the live view on a terminal
# (tmux: redraws, sorts, quits with q) and in a pipe, outputs checked before
# tracing, -p 1, and tmbpf run's exit status.
set -u
cd "$(dirname "$0")/../.." || exit 1
top=$PWD
T=$top/tmbpf
PYENV_ROOT=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
work=$(mktemp -d /tmp/tmbpf-e2e-reports.XXXXXX)
tmux_sock=$work/tmux.sock
trap 'tmux -S "$tmux_sock" kill-server 2>/dev/null; kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
[ "$(id -u)" -eq 0 ] || { echo "skip - e2e reports: needs root"; exit 0; }
py=$(ls -d "$PYENV_ROOT"/versions/3.12.*/bin/python3.12 2>/dev/null | tail -1)
[ -n "$py" ] || { echo "not ok - e2e reports: CPython 3.12 not found under $PYENV_ROOT"; exit 0; }
art=build/reports
mkdir -p "$art"
. tests/reports/lib.sh

# A program whose biggest allocation site is a named method.
cat > "$work/named.py" <<'EOF'
class Cache:
    def leaky_function(self, n):
        return [bytearray(1000) for _ in range(n)]

def small():
    return [bytes(10) for _ in range(100)]

keep = Cache().leaky_function(2000)
other = small()
EOF

# 1. pprof and the flame graph of captures, pyenv and Debian LTO: names.
# The third kind: a sampled capture (its statistics are estimates, and so
# must its pprof and page be).
for variant in "$py" /usr/bin/python3.11 "sampled:$py"; do
	target=${variant#sampled:}
	[ -x "$target" ] || { echo "not ok - e2e reports: $target missing"; continue; }
	tag=$(basename "$target")
	[ "$target" = /usr/bin/python3.11 ] && tag="debian-$tag"
	sample=()
	case $variant in sampled:*) tag="sampled-$tag"; sample=(--sample-bytes 4k) ;; esac
	snap=$work/$tag.tmbpf
	if ! timeout 60 $T run --frames 5 "${sample[@]}" -o "$snap" -- "$target" "$work/named.py" 2> "$work/run.err"; then
		echo "not ok - e2e reports: $tag: tmbpf run failed: $(tail -2 "$work/run.err" | tr '\n' '|')"
		continue
	fi
	$T stats "$snap" --limit 1 --json > "$work/top.json" 2> /dev/null
	# what the statistics say in all (a sampled snapshot's are estimates)
	read -r total ntraces < <($T stats "$snap" --key traceback --limit 100000000 --json 2> /dev/null |
		"$py" -c 'import json,sys; s = json.load(sys.stdin)["statistics"]; print(sum(x["size"] for x in s), sum(x["count"] for x in s))')
	read -r line size count < <("$py" -c '
import json, sys
s = json.load(open(sys.argv[1]))["statistics"][0]
f = s["traceback"][-1]
print("%s:%d" % (f["filename"], f["lineno"]), s["size"], s["count"])' "$work/top.json")
	case $line in
	*named.py:3) echo "ok - e2e reports: $tag: the capture's top line is $line" ;;
	*) echo "not ok - e2e reports: $tag: top line $line, not named.py:3" ;;
	esac
	$T convert "$snap" "$work/$tag.pb.gz" 2> /dev/null
	if command -v go > /dev/null; then
		pprof_check "$tag capture" "$work/$tag.pb.gz" "$total" "$line" "$size" "$count" "$ntraces" \
			"Cache.leaky_function" # (3.11: Cache.leaky_function.<locals>.<listcomp>)
	else
		skip_or_fail "e2e reports: go tool pprof: golang-go is not installed"
	fi
	$T flamegraph "$snap" -o "$work/$tag.html" 2> /dev/null
	if command -v chromium > /dev/null; then
		page_check "$tag capture" "$work/$tag.html" "Cache.leaky_function*($line)" \
			"leaky_function" 2000 "$art/flamegraph-$tag.png"
	else
		skip_or_fail "e2e reports: chromium is not installed"
	fi
done

# run -o FILE.pb.gz writes pprof directly.
if timeout 60 $T run --frames 5 -o "$work/direct.pb.gz" -- "$py" "$work/named.py" 2> /dev/null &&
   go tool pprof -top -nodecount=3 "$work/direct.pb.gz" 2> /dev/null | grep -q 'Cache.leaky_function'; then
	echo "ok - e2e reports: run -o x.pb.gz writes a pprof file go tool pprof reads"
else
	echo "not ok - e2e reports: run -o x.pb.gz"
fi

# 2. --older-than 5 on a program that allocates one block a second for 20 s
#    keeps the first ~15 (the snapshot is taken as it finalizes, at ~20 s).
cat > "$work/ages.py" <<'EOF'
import time
blocks = []
for i in range(20):
    b = bytes(100000 + i)
    blocks.append(b)
    time.sleep(1)
EOF
if timeout 60 $T run -o "$work/ages.tmbpf" -- "$py" "$work/ages.py" 2> "$work/ages.err"; then
	# The 20 blocks are the bytes objects of 100000-100100 bytes (header
	# included); line 4 also allocates small objects.
	big() { "$py" -c 'import json,sys; print(sum(1 for t in json.load(open(sys.argv[1]))["traces"] if 100000 <= t["size"] < 100100))' "$1"; }
	$T convert "$work/ages.tmbpf" "$work/all.json" 2> /dev/null
	$T convert --older-than 5 "$work/ages.tmbpf" "$work/old.json" 2> /dev/null
	$T convert --younger-than 5 "$work/ages.tmbpf" "$work/young.json" 2> /dev/null
	all=$(big "$work/all.json") n=$(big "$work/old.json") young=$(big "$work/young.json")
	if [ "$all" -eq 20 ] && [ "$n" -ge 14 ] && [ "$n" -le 16 ]; then
		echo "ok - e2e reports: --older-than 5 keeps $n of the $all blocks allocated a second apart"
	else
		echo "not ok - e2e reports: --older-than 5 keeps $n of $all (want ~15 of 20)"
	fi
	[ $((young + n)) -eq "$all" ] && echo "ok - e2e reports: --younger-than 5 keeps the other $young" ||
		echo "not ok - e2e reports: --younger-than 5 keeps $young, --older-than $n, of $all"
	n=$($T stats "$work/ages.tmbpf" --older-than 5 --include '*ages.py:4' --json 2>/dev/null |
		"$py" -c 'import json,sys; s=json.load(sys.stdin)["statistics"]; print(s[0]["count"] if s else 0)')
	[ "$n" -ge 14 ] && echo "ok - e2e reports: stats --older-than 5: $n blocks at ages.py:4" ||
		echo "not ok - e2e reports: stats --older-than 5: $n blocks at ages.py:4"
	$T stats "$work/ages.tmbpf" --key age --include '*ages.py:4' > "$work/age.txt" 2>/dev/null
	if grep -q '^age 1 s - 10 s: size=' "$work/age.txt" && grep -q '^age 10 s - 1 min: size=' "$work/age.txt"; then
		echo "ok - e2e reports: --key age: $(tr '\n' ';' < "$work/age.txt")"
	else
		echo "not ok - e2e reports: --key age: $(tr '\n' ';' < "$work/age.txt")"
	fi
else
	echo "not ok - e2e reports: ages run failed: $(tail -2 "$work/ages.err" | tr '\n' '|')"
fi
"$py" -c 'import tracemalloc; tracemalloc.start(); x=[bytes(100) for _ in range(10)]; tracemalloc.take_snapshot().dump("'"$work"'/tm.pickle")'
$T stats "$work/tm.pickle" --older-than 5 > /dev/null 2> "$work/err"; rc=$?
if [ $rc -eq 1 ] && [ "$(wc -l < "$work/err")" -eq 1 ] && grep -q "no allocation times" "$work/err"; then
	echo "ok - e2e reports: a pickle has no times, said in one line: $(cat "$work/err")"
else
	echo "not ok - e2e reports: --older-than on a pickle: exit $rc: $(cat "$work/err")"
fi

# A long-running target: a leak on one line, garbage on another.
cat > "$work/service.py" <<'EOF'
import sys, time
leaked = []
open(sys.argv[1], "w").close()
while True:
    leaked.append(bytearray(5000))
    garbage = [bytes(100) for _ in range(50)]
    time.sleep(0.02)
EOF
"$py" "$work/service.py" "$work/started" & svc=$!
for _ in $(seq 100); do [ -e "$work/started" ] && break; sleep 0.05; done

# 3. tmbpf leaks: the leaking line is what was allocated and kept.
timeout 30 $T leaks -p $svc --window 2 --include '*service.py' --limit 3 > "$work/leaks.out" 2> "$work/leaks.err"
rc=$?
if [ $rc -eq 0 ] && head -1 "$work/leaks.out" | grep -q 'service.py:5: size='; then
	echo "ok - e2e reports: leaks --window 2: $(head -1 "$work/leaks.out"); $(grep 'still alive' "$work/leaks.err" | sed 's/tmbpf: //')"
else
	echo "not ok - e2e reports: leaks: exit $rc: $(head -2 "$work/leaks.out" | tr '\n' '|') $(tail -2 "$work/leaks.err" | tr '\n' '|')"
fi

# 4. Outputs are checked before tracing starts.
t0=$(date +%s%N)
timeout 20 $T snapshot -p $svc -o "$work/missing/x.tmbpf" --duration 3 > /dev/null 2> "$work/err"
rc=$? ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ $rc -eq 1 ] && [ $ms -lt 1500 ] && grep -q "does not exist" "$work/err"; then
	echo "ok - e2e reports: snapshot -o to a missing directory fails in $ms ms, before tracing"
else
	echo "not ok - e2e reports: snapshot -o missing: exit $rc after $ms ms: $(cat "$work/err")"
fi
timeout 20 $T snapshot -p $svc -o "$work/s.pickle" --duration 0.5 2> /dev/null
[ "$(stat -c %a "$work/s.pickle" 2>/dev/null)" = 600 ] && echo "ok - e2e reports: snapshot -o writes mode 0600" ||
	echo "not ok - e2e reports: snapshot file mode $(stat -c %a "$work/s.pickle" 2>&1)"

# 5. The live view, not a terminal: reports one after another, no escapes.
timeout -s INT 3 $T -p $svc --interval 0.4 > "$work/lines.out" 2> /dev/null
n=$(grep -c '^\[' "$work/lines.out")
if [ "$n" -ge 2 ] && ! grep -q $'\033' "$work/lines.out"; then
	echo "ok - e2e reports: piped live view: $n reports one after another, no escape sequences"
else
	echo "not ok - e2e reports: piped live view: $n reports, escapes: $(grep -c $'\033' "$work/lines.out")"
fi

# 6. The live view on a terminal (tmux): redraws in place, sorts, q quits.
if command -v tmux > /dev/null; then
	tmux -S "$tmux_sock" new-session -d -s tv -x 160 -y 40 \
		"$T -p $svc --interval 0.5 --include '*service.py' --limit 5; echo TMBPF-EXITED \$?; sleep 30"
	pane() { tmux -S "$tmux_sock" capture-pane -p -t tv; }
	wait_for() { # REGEX [TRIES]
		for _ in $(seq "${2:-60}"); do pane | grep -qE "$1" && return 0; sleep 0.25; done
		return 1
	}
	if wait_for 'sort: size' && wait_for 'service.py:[0-9]+: size='; then
		echo "ok - e2e reports: tmux: the view draws (sort: size, statistics)"
	else
		echo "not ok - e2e reports: tmux: no view: $(pane | head -5 | tr '\n' '|')"
	fi
	h1=$(pane | grep -c '^\[')
	sleep 1.2
	h2=$(pane | grep -c '^\[')
	[ "$h1" -eq 1 ] && [ "$h2" -eq 1 ] && echo "ok - e2e reports: tmux: redrawn in place (one header on screen)" ||
		echo "not ok - e2e reports: tmux: $h1 then $h2 headers on screen"
	tmux -S "$tmux_sock" send-keys -t tv c
	wait_for 'sort: count' 20 && echo "ok - e2e reports: tmux: c sorts by count" ||
		echo "not ok - e2e reports: tmux: c: $(pane | sed -n 2p)"
	tmux -S "$tmux_sock" send-keys -t tv g
	if wait_for 'sort: growth' 20 && wait_for '\(\+[0-9]' 20; then
		echo "ok - e2e reports: tmux: g sorts by growth (diffs shown)"
	else
		echo "not ok - e2e reports: tmux: g: $(pane | sed -n 2,5p | tr '\n' '|')"
	fi
	tmux -S "$tmux_sock" send-keys -t tv q
	if wait_for 'TMBPF-EXITED 0' 40 && pane | grep -q '== final statistics'; then
		echo "ok - e2e reports: tmux: q quits (exit 0), final statistics on the normal screen"
	else
		echo "not ok - e2e reports: tmux: q: $(pane | tail -5 | tr '\n' '|')"
	fi
	tmux -S "$tmux_sock" kill-server 2>/dev/null
else
	skip_or_fail "e2e reports: tmux is not installed (.ci/run installs it)"
fi
kill $svc 2>/dev/null

# 7. -p 1 as root says what really failed.
timeout 20 $T -p 1 > /dev/null 2> "$work/err"
if ! grep -q "run as root" "$work/err" && [ "$(wc -l < "$work/err")" -eq 1 ]; then
	echo "ok - e2e reports: -p 1 as root: $(cat "$work/err")"
else
	echo "not ok - e2e reports: -p 1 as root: $(cat "$work/err")"
fi

# 8. tmbpf run returns the command's status.
timeout 30 $T run -- "$py" -c 'import sys; sys.exit(3)' > /dev/null 2>&1; rc=$?
[ $rc -eq 3 ] && echo "ok - e2e reports: run returns the command's status (3)" ||
	echo "not ok - e2e reports: run returned $rc, the command 3"
exit 0
