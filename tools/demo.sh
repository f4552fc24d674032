#!/usr/bin/env bash
# make demo: trace the bundled example service from its first allocation and
# print its top allocations, as tracemalloc would have printed them.
set -eu
cd "$(dirname "$0")/.."
py=$(ls -d "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.12.*/bin/python3.12 2>/dev/null | head -1)
[ -n "$py" ] || py=$(command -v python3)
echo "+ ./tmbpf run --frames 25 -- $py examples/leaky_service.py" >&2
./tmbpf run --frames 25 -- "$py" examples/leaky_service.py
snap=build/demo-snapshot.pickle
echo "+ ./tmbpf run --frames 25 -o $snap -- $py examples/leaky_service.py" >&2
./tmbpf run --frames 25 -o "$snap" -- "$py" examples/leaky_service.py > /dev/null
echo "+ ./tmbpf stats $snap --key traceback --limit 1 --traceback" >&2
./tmbpf stats "$snap" --key traceback --limit 1 --traceback
