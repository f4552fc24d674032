# A cgroup of a suite's own (sourced by system_wide.sh, soak.sh, gunicorn.sh, embedder.sh):
# the processes a system-wide tmbpf may trace are put there and selected with
# --cgroup, so nothing else on the host is touched. Not a suite itself
# (tests/e2e/run.sh runs only tests/e2e/*.sh).

# test_cgroup_make SUITE: sets $cg (its directory) and $cgpath (its path as
# /proc/PID/cgroup names it), in the v2 hierarchy if mounted, else any v1
# one with the pids controller. Returns 1 after a "not ok - SUITE" line.
test_cgroup_make() {
	local mnt
	mnt=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
	[ -n "$mnt" ] || mnt=$(awk '$3 == "cgroup" && $4 ~ /pids/ { print $2; exit }' /proc/mounts)
	if [ -z "$mnt" ]; then
		echo "not ok - $1: no cgroup hierarchy mounted"
		return 1
	fi
	if ! cg=$(mktemp -d "$mnt/tmbpf-test.XXXXXX"); then
		echo "not ok - $1: cannot make a cgroup in $mnt"
		cg=
		return 1
	fi
	cgpath=/${cg#"$mnt"/}
}

# test_cgroup_remove: SIGKILL what is left in $cg, then remove it.
test_cgroup_remove() {
	[ -n "${cg:-}" ] && [ -d "$cg" ] || return 0
	for p in $(cat "$cg/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	sleep 0.2
	rmdir "$cg" 2>/dev/null
}

# test_cgroup_cleanup: a suite's EXIT trap: SIGKILL its tmbpf ($tm), then
# what is left in $cg; remove the cgroup and the suite's $work.
test_cgroup_cleanup() {
	[ -n "${tm:-}" ] && kill -9 "$tm" 2>/dev/null
	test_cgroup_remove
	[ -n "${work:-}" ] && rm -rf "$work"
}
