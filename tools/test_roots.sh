#!/usr/bin/env bash
# The Debian roots the distribution tests run CPythons in (tests/e2e/distros.sh,
# tests/diff, tests/formats): sid (python3.13, 3.14, 3.15, python3.14-dbg,
# numpy, memray) and trixie (python3.13, numpy), at $TMBPF_ROOTS/{sid,trixie}
# (default /var/cache/tmbpf-test: outside the checkout, kept between runs).
#
# Idempotent: a root whose VERSIONS file exists and that has every package is
# reused as it is; one that misses packages gets them installed; a missing or
# half-built one (no VERSIONS) is made again with debootstrap --variant=minbase
# into DIR.tmp, which is renamed only when complete. Sid moves: each run
# records the versions it used in build/test-roots.txt. Needs root, and the
# network the first time (about 4-6 minutes on a fresh machine).
#
# usage: tools/test_roots.sh [sid|trixie ...]   (default: both)
set -eu
cd "$(dirname "$0")/.."
CACHE=${TMBPF_ROOTS:-/var/cache/tmbpf-test}
MIRROR=${TMBPF_MIRROR:-http://deb.debian.org/debian}
# The Release file can look expired to a VM's clock: apt inside the root only.
APT_OPT=(-o Acquire::Check-Valid-Until=false -o Acquire::Retries=3)
record=build/test-roots.txt

packages() {
	case $1 in
	sid) echo python3.13 python3.14 python3.15 python3.14-dbg python3-numpy python3-memray ;;
	trixie) echo python3.13 python3-numpy ;;
	*) echo "test_roots: unknown root $1" >&2; return 1 ;;
	esac
}

missing_packages() { # ROOTDIR SUITE
	local p miss=
	for p in $(packages "$2"); do
		chroot "$1" dpkg-query -W -f '${Status}\n' "$p" 2>/dev/null | grep -q 'ok installed' ||
			miss="$miss $p"
	done
	echo $miss
}

install_packages() { # ROOTDIR PACKAGES...
	local dir=$1
	shift
	chroot "$dir" apt-get "${APT_OPT[@]}" -qq update
	DEBIAN_FRONTEND=noninteractive chroot "$dir" apt-get "${APT_OPT[@]}" install -y -qq \
		--no-install-recommends "$@" >/dev/null
}

write_versions() { # ROOTDIR SUITE
	{
		echo "# tmbpf test root: Debian $2 (debootstrap --variant=minbase), $(date -u +%FT%TZ)"
		echo "# key packages:"
		chroot "$1" dpkg-query -W -f '${Package}=${Version}\n' $(packages "$2") python3 libc6 \
			2>/dev/null | sed 's/^/#   /'
		echo "# all packages (dpkg-query -W):"
		chroot "$1" dpkg-query -W -f '${Package}=${Version}\n' | sort
	} > "$1/VERSIONS.tmp"
	mv "$1/VERSIONS.tmp" "$1/VERSIONS"
}

build_root() { # SUITE
	local suite=$1 dir=$CACHE/$1 t0
	t0=$(date +%s)
	if [ -s "$dir/VERSIONS" ] && [ -x "$dir/usr/bin/dpkg-query" ]; then
		local miss
		miss=$(missing_packages "$dir" "$suite")
		if [ -n "$miss" ]; then
			echo "# test_roots: $suite: installing$miss"
			install_packages "$dir" $miss
			write_versions "$dir" "$suite"
		fi
		echo "# test_roots: $suite: ready ($dir)"
		return 0
	fi
	command -v debootstrap >/dev/null || {
		echo "# test_roots: installing debootstrap"
		apt-get install -y -qq debootstrap >/dev/null
	}
	echo "# test_roots: building $suite in $dir.tmp (debootstrap, then $(packages "$suite"))"
	rm -rf "$dir.tmp" "$dir"
	debootstrap --variant=minbase "$suite" "$dir.tmp" "$MIRROR" > "$CACHE/$suite.debootstrap.log" 2>&1 || {
		echo "# test_roots: debootstrap $suite failed: $(tail -1 "$CACHE/$suite.debootstrap.log")"
		return 1
	}
	local t1
	t1=$(date +%s)
	install_packages "$dir.tmp" $(packages "$suite") || return 1
	write_versions "$dir.tmp" "$suite"
	mv "$dir.tmp" "$dir"
	echo "# test_roots: $suite built in $(( $(date +%s) - t0 )) s (debootstrap $((t1 - t0)) s, packages $(( $(date +%s) - t1 )) s)"
}

[ "$(id -u)" -eq 0 ] || { echo "# test_roots: needs root (debootstrap, chroot)"; exit 1; }
mkdir -p "$CACHE" build
suites=${*:-sid trixie}
exec 9> "$CACHE/.lock"
flock 9 # one builder at a time; a second run waits and then reuses
rc=0
t0=$(date +%s)
# The roots build in parallel: most of the time is waiting for the mirror.
pids=()
for s in $suites; do
	build_root "$s" > "$CACHE/$s.build.log" 2>&1 &
	pids+=($!)
done
i=0
for s in $suites; do
	wait "${pids[$i]}" || rc=1
	cat "$CACHE/$s.build.log"
	i=$((i + 1))
done
: > "$record.tmp"
for s in $suites; do
	[ -s "$CACHE/$s/VERSIONS" ] || continue
	{ echo "$s $CACHE/$s"; grep '^#   ' "$CACHE/$s/VERSIONS"; } >> "$record.tmp"
done
mv "$record.tmp" "$record"
echo "# test_roots: done in $(( $(date +%s) - t0 )) s; versions in $record"
exit $rc
