"""One timed run, one counting run, and what their output says.

A workload prints `BENCH name=W seconds=S ...` (benchlib.py); a tmbpf run also reports on
stderr (`tmbpf: drops: N`, with -v `tmbpf: counter NAME = N` and the block/memory summary).
"""
import os
import re
import subprocess

from variants import command, notable_lines

BENCH_RE = re.compile(r"^BENCH (.*)$", re.M)
SIZE_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3, "TiB": 1024 ** 4}


def base_env(args, scale):
    """The environment of every run: no allocator or tracer settings inherited, fixed hashing."""
    env = dict(os.environ)
    for k in ("PYTHONMALLOC", "PYTHONTRACEMALLOC", "LD_PRELOAD", "BENCH_COUNT", "BENCH_HOLD",
              "PYTHONDEVMODE", "PYTHONSTARTUP", "PYTHONPATH", "PYTHONHOME"):
        env.pop(k, None)
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["BENCH_SCALE"] = repr(scale)
    env["BENCH_DEPTH"] = str(args.depth)
    return env


def parse_bench(stdout):
    """Fields of the last BENCH line with a seconds= field (or of the first BENCH line)."""
    found = [dict(kv.split("=", 1) for kv in m.group(1).split() if "=" in kv)
             for m in BENCH_RE.finditer(stdout)]
    if not found:
        return None
    timed = [f for f in found if "seconds" in f]
    fields = timed[-1] if timed else found[0]
    if "seconds" in fields:
        fields["seconds"] = float(fields["seconds"])
    return fields


def parse_tmbpf_stderr(text):
    """Drops, allocation count, memory figures and statements from tmbpf's stderr."""
    info = {"drops": None, "allocs": None, "blocks": None, "memory_bytes": None,
            "coverage": None, "notes": notable_lines(text)}
    m = re.findall(r"tmbpf: drops: (\d+)", text)
    if m:
        info["drops"] = int(m[-1])
    else:
        found = [int(x) for x in re.findall(r"dropped (\d+) events", text)]
        found += [int(x) for x in re.findall(r"\b(\d+) dropped\b", text)]
        if found:
            info["drops"] = max(found)
    m = re.findall(r"(\d+) blocks, (\d+) allocs, \d+ dropped; tmbpf memory ([\d.]+) "
                   r"(B|KiB|MiB|GiB)", text)
    if m:
        blocks, allocs, num, unit = m[-1]
        info["blocks"], info["allocs"] = int(blocks), int(allocs)
        info["memory_bytes"] = float(num) * SIZE_UNITS[unit]
    m = re.search(r"coverage (\w+)", text)
    info["coverage"] = m.group(1) if m else None
    return info


def tmbpf_counters(text):
    """The `tmbpf: counter NAME = N` lines of tmbpf -v."""
    return {k: int(v) for k, v in re.findall(r"^tmbpf: counter (.+?) = (\d+)$", text, re.M)}


def run_once(variant, interp, workload, args, binaries, env, tag):
    """Run one variant once; dict(seconds, tmbpf info) or dict(error=...). tag names memray's
    output file, which is removed afterwards."""
    out_in = out_host = None
    if variant.kind == "memray":
        name = "memray-%s.bin" % tag
        out_in = os.path.join(interp.dir_in, name)
        out_host = os.path.join(interp.dir_host, name)
    cmd = command(variant, interp, interp.script(workload), binaries, out_in)
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                           universal_newlines=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"error": "timed out after %d s" % args.timeout}
    finally:
        if out_host and os.path.exists(out_host):
            os.unlink(out_host)
    fields = parse_bench(p.stdout)
    if p.returncode != 0 or not fields or "seconds" not in fields:
        tail = " | ".join(p.stderr.strip().splitlines()[-3:])
        return {"error": "exit %d, %s" % (p.returncode, tail or "no BENCH line")}
    res = {"seconds": fields["seconds"]}
    if variant.is_tmbpf:
        res["tmbpf"] = parse_tmbpf_stderr(p.stderr)
    return res


def count_events(interp, workload, scale, args):
    """Allocation calls in the window at this scale: PYTHONMALLOC=malloc + malloc_count.so.
    dict(allocs, frees, allocs_total, frees_total) or dict(error=...)."""
    if not interp.counter_in:
        return {"error": "malloc_count.so is not built"}
    env = base_env(args, scale)
    extra = {"PYTHONMALLOC": "malloc", "LD_PRELOAD": interp.counter_in, "BENCH_COUNT": "1"}
    try:
        p = subprocess.run(interp.argv(extra) + [interp.script(workload)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                           universal_newlines=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"error": "timed out after %d s" % args.timeout}
    fields = parse_bench(p.stdout)
    if p.returncode != 0 or not fields or "allocs" not in fields:
        return {"error": "exit %d, %s" % (p.returncode, p.stderr.strip()[-200:] or "no counts")}
    return {k: int(fields[k]) for k in ("allocs", "frees", "allocs_total", "frees_total")}
