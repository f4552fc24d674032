# Checks shared by tests/reports/run.sh and tests/e2e/reports.sh (sourced;
# needs $T, $work and $py).

skip_or_fail() {
	if [ "${CI:-}" = true ]; then echo "not ok - $*"; else echo "skip - $*"; fi
}

# pprof_check NAME FILE TOTAL_BYTES TOP_LINE TOP_BYTES TOP_COUNT NTRACES [FUNCTION]:
# go tool pprof agrees with tmbpf stats: totals of both sample types, the top
# line (-lines) and its values; with FUNCTION, -top (by function) names it.
# pprof's -lines rows are (function, line): where two functions share the
# line (a 3.11 list comprehension and its method), their flats add up.
pprof_check() {
	local name=$1 f=$2 total=$3 line=$4 size=$5 count=$6 ntraces=$7 func=${8:-}
	local out=$work/pprof.out got_total got_line got_flat got_objects

	if ! go tool pprof -top -lines -unit=byte -nodecount=3 "$f" > "$out" 2> "$work/pprof.err"; then
		echo "not ok - reports: $name: go tool pprof failed: $(head -3 "$work/pprof.err" | tr '\n' '|')"
		return
	fi
	got_total=$(sed -n 's/.* of \([0-9]*\)B total.*/\1/p' "$out")
	# First row: flat flat% sum% cum cum% FUNCTION FILE:LINE
	read -r got_flat _ _ _ _ rest < <(awk '/flat%/ { getline; print; exit }' "$out")
	got_line=${rest##* }
	if [ "$got_total" = "$total" ] && [ "$got_line" = "$line" ] && [ "$got_flat" = "${size}B" ]; then
		echo "ok - reports: $name: go tool pprof -top -lines: total $got_total B and top line $got_line ($got_flat) as tmbpf stats"
	else
		echo "not ok - reports: $name: pprof total '$got_total' line '$got_line' flat '$got_flat'; stats: $total $line ${size}B"
		sed 's/^/#   /' "$out" | head -12
	fi
	go tool pprof -top -lines -sample_index=inuse_objects -nodecount=1 "$f" > "$out" 2>/dev/null
	got_objects=$(sed -n 's/.* of \([0-9]*\) total.*/\1/p' "$out")
	go tool pprof -top -lines -sample_index=inuse_objects -nodecount=100 "$f" > "$out" 2>/dev/null
	got_flat=$(awk -v l="$line" '$NF == l { s += $1 } END { print s + 0 }' "$out")
	if [ "$got_objects" = "$ntraces" ] && [ "$got_flat" = "$count" ]; then
		echo "ok - reports: $name: -sample_index=inuse_objects: $got_objects blocks, top line $got_flat as stats"
	else
		echo "not ok - reports: $name: inuse_objects total '$got_objects' (want $ntraces), top '$got_flat' (want $count)"
	fi
	if [ -n "$func" ]; then
		go tool pprof -top -nodecount=20 "$f" > "$out" 2>/dev/null
		if grep -q "$func" "$out"; then
			echo "ok - reports: $name: go tool pprof -top names the function $func"
		else
			echo "not ok - reports: $name: $func not in pprof -top"; sed 's/^/#   /' "$out" | head -12
		fi
	fi
}

chromium_run() { # URL ARGS...: headless Chromium with the flags this machine needs
	local url=$1; shift
	timeout 90 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir="$work/chromium" --window-size=1400,900 "$@" "$url"
}

# page_check NAME PAGE TOP_SITE SEARCH MAX_MS SCREENSHOT: no script error, the
# top allocation site (a glob) shown first, the search finds SEARCH, the page
# ready in under MAX_MS (best of two loads: the machine is shared), a
# screenshot kept.
page_check() {
	local name=$1 page=$2 line=$3 search=$4 max=$5 shot=$6 dom=$work/dom.html best=999999 ms i

	for i in 1 2; do
		chromium_run "file://$page#search=$search" --enable-logging=stderr --v=0 --dump-dom \
			> "$dom" 2> "$work/chromium.err"
		ms=$(sed -n 's/.*data-render-ms="\([0-9]*\)".*/\1/p' "$dom")
		[ -n "$ms" ] && [ "$ms" -lt "$best" ] && best=$ms
	done
	if [ -s "$dom" ] && grep -q '<div id="errors"></div>' "$dom" &&
	   ! grep -q 'CONSOLE.*\(Uncaught\|Error\)' "$work/chromium.err"; then
		echo "ok - reports: $name: the page runs without a console error"
	else
		echo "not ok - reports: $name: page errors: $(grep -o '<div id="errors">[^<]*' "$dom") $(grep CONSOLE "$work/chromium.err" | head -2)"
	fi
	# The sites table's first row is the top statistic's frame.
	first=$(grep -o '<tbody><tr>.*' "$dom" | sed 's#</tr>.*##' | sed 's/<[^>]*>/|/g' | tr -s '|' | awk -F'|' '{ print $(NF-1) }' | sed 's/&lt;/</g; s/&gt;/>/g; s/&amp;/\&/g')
	# shellcheck disable=SC2254
	case $first in
	$line) echo "ok - reports: $name: the top allocation site shown first: $first" ;;
	*) echo "not ok - reports: $name: first site '$first', tmbpf stats says $line" ;;
	esac
	matched=$(sed -n 's/.*<span id="match" data-nodes="\([0-9]*\)".*/\1/p' "$dom")
	[ "${matched:-0}" -gt 0 ] && echo "ok - reports: $name: search '$search' finds $matched boxes" ||
		echo "not ok - reports: $name: search '$search' found nothing: $(grep -o '<span id="match"[^<]*' "$dom")"
	if [ "$best" -lt "$max" ]; then
		echo "ok - reports: $name: page ready in $best ms (limit $max): $(grep -o '<div id="status"[^<]*' "$dom" | sed 's/.*>//')"
	else
		echo "not ok - reports: $name: page ready in $best ms (limit $max)"
	fi
	chromium_run "file://$page" --screenshot="$work/shot.png" > /dev/null 2>&1
	if [ -s "$work/shot.png" ]; then
		cp "$work/shot.png" "$shot"
		echo "ok - reports: $name: screenshot kept in $shot"
	else
		echo "not ok - reports: $name: no screenshot"
	fi
}
