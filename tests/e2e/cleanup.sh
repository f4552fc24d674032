#!/usr/bin/env bash
# After tmbpf exits normally, and after it is SIGKILLed, none of its BPF
# programs or links remain (the kernel removes a link's uprobe, and its int3,
# with the link), tracefs holds no uprobe event of ours, and the target lives on.
set -u
cd "$(dirname "$0")/../.." || exit 1
top=$PWD
PYENV_ROOT=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
work=$(mktemp -d /tmp/tmbpf-cleanup.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
[ "$(id -u)" -eq 0 ] || { echo "skip - cleanup: needs root"; exit 0; }
command -v bpftool >/dev/null || { echo "not ok - cleanup: bpftool missing"; exit 1; }
py=$(ls -d "$PYENV_ROOT"/versions/3.12.*/bin/python3.12 2>/dev/null | head -1)

# ids of BPF programs and links held by process $1, from its fd table
# (bpftool's own pid column needs a bpftool built with BPF iterators).
held() {
	local f
	for f in /proc/"$1"/fdinfo/*; do
		awk '/^prog_id:/ { print "prog", $2 } /^link_id:/ { print "link", $2 }' "$f" 2>/dev/null
	done | sort -u
}

still_there() { # file of "prog ID"/"link ID" lines
	local kind id
	while read -r kind id; do
		bpftool "$kind" show id "$id" >/dev/null 2>&1 && echo "$kind $id"
	done < "$1"
}

uprobe_count() { # tracefs uprobe events (tmbpf uses perf-event uprobes, so none should appear)
	grep -c . /sys/kernel/tracing/uprobe_events 2>/dev/null || echo 0
}

for how in exit sigkill; do
	"$py" "$top/tests/e2e/live/growing_cache.py" 20 > "$work/t.out" 2>&1 & tgt=$!
	for _ in $(seq 100); do grep -q READY "$work/t.out" && break; sleep 0.05; done
	before_events=$(uprobe_count)
	./tmbpf snapshot -p $tgt -o "$work/$how.pickle" --frames 25 --duration 30 2> "$work/$how.err" & tm=$!
	for _ in $(seq 100); do held $tm > "$work/held.$how"; [ -s "$work/held.$how" ] && grep -q link "$work/held.$how" && break; sleep 0.1; done
	nheld=$(wc -l < "$work/held.$how")
	sleep 0.5
	if [ $how = exit ]; then kill -INT $tm; else kill -KILL $tm; fi
	wait $tm 2>/dev/null
	sleep 0.5
	left=$(still_there "$work/held.$how")
	after_events=$(uprobe_count)
	if [ "$nheld" -gt 0 ] && [ -z "$left" ] && [ "$before_events" = "$after_events" ] && kill -0 $tgt; then
		echo "ok - cleanup after $how: $nheld programs/links held while tracing, none left; target alive"
	else
		echo "not ok - cleanup after $how: held $nheld, left: $(echo $left), uprobe_events $before_events -> $after_events"
	fi
	kill $tgt; wait $tgt 2>/dev/null
done

# A suite reports failures as "not ok" lines; reaching this line means it ran to its end.
exit 0
