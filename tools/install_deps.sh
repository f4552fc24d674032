#!/usr/bin/env bash
# Install what tmbpf needs to build and test, from Debian's packages.
# Idempotent: does nothing when everything is present.
set -eu
pkgs=(make gcc clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev python3 python3-dev libclang-rt-14-dev
	golang-go chromium tmux) # the last three for tests: go tool pprof, the flame graph page, the live view
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	echo "tmbpf: installing ${missing[*]}" >&2
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >&2
fi
