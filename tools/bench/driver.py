"""Capture benchmark driver (issue 4): untraced vs tracemalloc vs tmbpf run, side by side.

For each interpreter and workload it runs every variant once per repetition, rotating the
variant order from one repetition to the next (interleaved, so drift hits all variants alike):

    untraced   python bench_W.py
    tm1, tm25  python -X tracemalloc=N bench_W.py
    tb1, tb25  tmbpf run --frames N -- python bench_W.py

Each workload times itself (warm-up first, start-up excluded) and prints a BENCH line.  The
ratio of a variant is the median over repetitions of (variant seconds / untraced seconds of the
same repetition).  Then, outside the timed runs:

  * a counting run per workload (PYTHONMALLOC=malloc + LD_PRELOAD malloc_count.so) counts the
    allocation calls in the timed window, which tracemalloc and tmbpf would each see as events;
  * a statistics run per workload under tmbpf -v --frames 25, with BPF run-time statistics on
    (kernel.bpf_stats_enabled=1, restored afterwards, plus a BPF_ENABLE_STATS descriptor), holds
    the target after its BENCH line and reads run_time_ns/run_cnt of tmbpf's programs with
    bpftool; tmbpf's counters give its allocation count (coverage);
  * a memory run (bench_retain.py) gives tmbpf's marginal memory per live block.

./tmbpf is copied aside at the start so that one build is measured throughout.

Exit status: 0 ok, 1 a run failed (or, with --acceptance, a criterion failed), 2 usage.
Runs on any CPython >= 3.8; tools/bench_capture.sh starts it with pyenv's 3.12.
"""
import argparse
import glob
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from report import TRACED, VARIANTS, acceptance, fmt, print_table, write_markdown

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
WORKLOADS = ["objects", "dictlist", "json", "compile", "classes", "threads"]
STATS_SYSCTL = "/proc/sys/kernel/bpf_stats_enabled"
RUN_TIMEOUT_S = 300
BENCH_RE = re.compile(r"^BENCH (.*)$", re.M)


def log(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


# ---------------------------------------------------------------------------------------------
# interpreters and tmbpf

def pyenv_root():
    try:
        out = subprocess.run(["pyenv", "root"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             universal_newlines=True, timeout=30).stdout.strip()
        if out:
            return out
    except (OSError, subprocess.SubprocessError):
        pass
    return os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")


def _version_key(path):
    m = re.search(r"/versions/(\d+)\.(\d+)\.(\d+)/", path)
    return tuple(int(x) for x in m.groups()) if m else (0, 0, 0)


def pyenv_python(root, minor):
    """Newest pyenv CPython 3.<minor>.x (no suffix builds such as 3.12-dev or t builds)."""
    found = [p for p in glob.glob(os.path.join(root, "versions", "3.%d.*" % minor, "bin",
                                               "python3.%d" % minor))
             if re.search(r"/versions/3\.%d\.\d+/" % minor, p)]
    return max(found, key=_version_key) if found else None


def interpreter_version(python):
    out = subprocess.run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         universal_newlines=True, timeout=60)
    return out.stdout.strip() if out.returncode == 0 else None


def choose_interpreters(args):
    """Return [(label, path)]; exit 1 naming what is missing."""
    root = pyenv_root()
    wanted = []
    if args.python:
        wanted = [(None, p) for p in args.python]
    else:
        minors = [8, 9, 10, 11, 12, 13] if args.all_pythons else [12]
        for minor in minors:
            p = pyenv_python(root, minor)
            if not p:
                log("no pyenv CPython 3.%d under %s/versions (install it with pyenv install 3.%d)"
                    % (minor, root, minor))
                sys.exit(1)
            wanted.append(("pyenv", p))
        if not args.no_debian:
            if not os.access("/usr/bin/python3.11", os.X_OK):
                log("/usr/bin/python3.11 is missing (apt-get install python3, or --no-debian)")
                sys.exit(1)
            wanted.append(("debian", "/usr/bin/python3.11"))
    result = []
    for kind, path in wanted:
        ver = interpreter_version(path)
        if not ver:
            log("%s does not run" % path)
            sys.exit(1)
        if kind is None:
            kind = "pyenv" if path.startswith(root) else ("debian" if path.startswith("/usr/bin/")
                                                          else "python")
        result.append(("%s-%s" % (kind, ver), path))
    return result


def tmbpf_status(tmbpf, python, shown):
    """(True, '') if `tmbpf run` works on this interpreter, else (False, reason)."""
    if not os.access(tmbpf, os.X_OK):
        return False, "%s is not built (make)" % shown
    if os.geteuid() != 0:
        return False, "needs root"
    try:
        p = subprocess.run([tmbpf, "run", "--frames", "1", "--", python, "-c",
                            "print('TMBPF_PROBE_OK')"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    except subprocess.TimeoutExpired:
        return False, "tmbpf run timed out on a trivial program"
    if p.returncode == 0 and "TMBPF_PROBE_OK" in p.stdout:
        return True, ""
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    return False, (lines[0] if lines else "tmbpf run exited %d" % p.returncode)


# ---------------------------------------------------------------------------------------------
# one run

def base_env(args):
    env = dict(os.environ)
    for k in ("PYTHONMALLOC", "PYTHONTRACEMALLOC", "LD_PRELOAD", "BENCH_COUNT", "BENCH_HOLD",
              "PYTHONDEVMODE", "PYTHONSTARTUP"):
        env.pop(k, None)
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["BENCH_SCALE"] = repr(args.scale)
    env["BENCH_DEPTH"] = str(args.depth)
    return env


def command(variant, python, script, tmbpf):
    if variant == "untraced":
        return [python, script]
    if variant.startswith("tm"):
        return [python, "-X", "tracemalloc=%s" % variant[2:], script]
    return [tmbpf, "run", "--frames", variant[2:], "--", python, script]


def parse_bench(stdout):
    m = BENCH_RE.search(stdout)
    if not m:
        return None
    fields = dict(kv.split("=", 1) for kv in m.group(1).split() if "=" in kv)
    if "seconds" in fields:
        fields["seconds"] = float(fields["seconds"])
    return fields


SIZE_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3, "TiB": 1024 ** 4}


def parse_tmbpf_stderr(text):
    """Drops, allocation count and memory figures from tmbpf's diagnostics (None if absent)."""
    info = {"drops": None, "allocs": None, "blocks": None, "memory_bytes": None,
            "bytes_per_block": None, "coverage": None}
    m = re.findall(r"tmbpf: drops: (\d+)", text)
    if m:
        info["drops"] = int(m[-1])
    else:
        found = [int(x) for x in re.findall(r"dropped (\d+) events", text)]
        found += [int(x) for x in re.findall(r"\b(\d+) dropped\b", text)]
        if found:
            info["drops"] = max(found)
    m = re.findall(r"(\d+) blocks, (\d+) allocs, \d+ dropped; tmbpf memory ([\d.]+) (B|KiB|MiB|GiB)",
                   text)
    if m:
        blocks, allocs, num, unit = m[-1]
        info["blocks"], info["allocs"] = int(blocks), int(allocs)
        info["memory_bytes"] = float(num) * SIZE_UNITS[unit]
    m = re.search(r"coverage (\w+)", text)
    info["coverage"] = m.group(1) if m else None
    m = re.findall(r"([\d.]+) (?:B|bytes) (?:per|/) (?:live )?block", text)
    if m:
        info["bytes_per_block"] = float(m[-1])
    return info


def run_once(variant, python, script, args, env):
    """Run one variant; return dict(seconds, fields, tmbpf info) or dict(error=...)."""
    cmd = command(variant, python, script, args.tmbpf)
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                           universal_newlines=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"error": "timed out after %d s" % args.timeout}
    fields = parse_bench(p.stdout)
    if p.returncode != 0 or not fields:
        tail = " | ".join(p.stderr.strip().splitlines()[-3:])
        return {"error": "exit %d, %s" % (p.returncode, tail or "no BENCH line")}
    res = {"seconds": fields["seconds"], "fields": fields}
    if variant.startswith("tb"):
        res["tmbpf"] = parse_tmbpf_stderr(p.stderr)
    return res


# ---------------------------------------------------------------------------------------------
# allocation counting run

def build_counter(args):
    out_dir = os.path.join(REPO, "build", "bench")
    so = os.path.join(out_dir, "malloc_count.so")
    src = os.path.join(HERE, "malloc_count.c")
    if os.path.exists(so) and os.path.getmtime(so) >= os.path.getmtime(src):
        return so
    os.makedirs(out_dir, exist_ok=True)
    cc = os.environ.get("CC", "cc")
    p = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-Wall", "-Wextra", "-o", so, src],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    if p.returncode != 0:
        log("could not build malloc_count.so (events will be unknown): %s" % p.stdout.strip())
        return None
    return so


def count_events(python, script, so, args):
    env = base_env(args)
    env.update({"PYTHONMALLOC": "malloc", "LD_PRELOAD": so, "BENCH_COUNT": "1"})
    p = subprocess.run([python, script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env, universal_newlines=True, timeout=args.timeout)
    fields = parse_bench(p.stdout)
    if p.returncode != 0 or not fields or "allocs" not in fields:
        log("counting run failed for %s: %s" % (script, p.stderr.strip()[-200:]))
        return None
    return {"allocs": int(fields["allocs"]), "frees": int(fields["frees"]),
            "allocs_total": int(fields["allocs_total"])}


# ---------------------------------------------------------------------------------------------
# BPF statistics run

def bpftool_json(what):
    try:
        p = subprocess.run(["bpftool", what, "show", "-j"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        log("bpftool %s show: %s (apt-get install bpftool)" % (what, e))
        return []
    if p.returncode != 0:
        return []
    try:
        return json.loads(p.stdout or "[]")
    except ValueError:
        return []


def owned_ids(pid):
    """(prog ids, map ids) of the BPF objects process pid holds open (its /proc fdinfo)."""
    progs, maps = set(), set()
    fd_dir = "/proc/%d/fdinfo" % pid
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return progs, maps
    for fd in fds:
        try:
            with open(os.path.join(fd_dir, fd)) as f:
                text = f.read()
        except OSError:
            continue
        m = re.search(r"^prog_id:\s*(\d+)", text, re.M)
        if m:
            progs.add(int(m.group(1)))
        m = re.search(r"^map_id:\s*(\d+)", text, re.M)
        if m:
            maps.add(int(m.group(1)))
    return progs, maps


def bpf_sample(pid):
    """tmbpf's programs and maps (bpftool records) and its RSS, read now."""
    prog_ids, map_ids = owned_ids(pid)
    progs = [p for p in bpftool_json("prog") if p.get("id") in prog_ids]
    maps = [m for m in bpftool_json("map") if m.get("id") in map_ids]
    rss = 0
    try:
        with open("/proc/%d/status" % pid) as f:
            m = re.search(r"^VmRSS:\s*(\d+) kB", f.read(), re.M)
            rss = int(m.group(1)) * 1024 if m else 0
    except OSError:
        pass
    return {"progs": progs, "maps": maps, "rss": rss}


class BpfStats:
    """BPF run-time statistics on for the duration, previous state restored.

    Sets kernel.bpf_stats_enabled=1 if it was 0 (and writes 0 back afterwards), and also holds
    a BPF_ENABLE_STATS file descriptor, so that another process writing 0 to the sysctl
    meanwhile cannot switch the statistics off under us; the kernel drops that reference
    when the descriptor closes, even if this driver is killed."""

    def __enter__(self):
        import ctypes
        self.old = None
        self.fd = -1
        with open(STATS_SYSCTL) as f:
            old = f.read().strip()
        if old == "0":
            with open(STATS_SYSCTL, "w") as f:
                f.write("1")
            self.old = old
        libc = ctypes.CDLL(None, use_errno=True)
        attr = (ctypes.c_uint8 * 16)()      # union bpf_attr { .enable_stats.type = RUN_TIME }
        self.fd = libc.syscall(321, 32, attr, 16)   # __NR_bpf (x86-64), BPF_ENABLE_STATS
        return self

    def __exit__(self, *exc):
        if self.fd >= 0:
            os.close(self.fd)
        if self.old is not None:
            with open(STATS_SYSCTL, "w") as f:
                f.write(self.old)
        return False


def held_run(cmd, env, on_bench, timeout):
    """Run cmd with BENCH_HOLD; at the k-th BENCH line call on_bench(k, fields, pid), then
    release hold k.  Returns (exit code, stderr text)."""
    hold_dir = tempfile.mkdtemp(prefix="tmbench.")
    env = dict(env, BENCH_HOLD=os.path.join(hold_dir, "release"))
    errf = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, env=env,
                            universal_newlines=True)
    watchdog = threading.Timer(timeout, proc.kill)
    watchdog.start()
    try:
        k = 0
        for line in proc.stdout:
            if line.startswith("BENCH "):
                k += 1
                on_bench(k, parse_bench(line), proc.pid)
                open("%s.%d" % (env["BENCH_HOLD"], k), "w").close()
        proc.wait()
        errf.seek(0)
        return proc.returncode, errf.read()
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        errf.close()
        shutil.rmtree(hold_dir, ignore_errors=True)


def tmbpf_counters(text):
    """The `tmbpf: counter NAME = N` lines of tmbpf -v."""
    return {k: int(v) for k, v in re.findall(r"^tmbpf: counter (.+?) = (\d+)$", text, re.M)}


def stats_run(python, script, args):
    """tmbpf -v run --frames 25, held after the workload: BPF ns per program run, counters."""
    samples = []
    cmd = [args.tmbpf, "run", "-v", "--frames", "25", "--", python, script]
    rc, err = held_run(cmd, base_env(args), lambda k, f, pid: samples.append(bpf_sample(pid)),
                       args.timeout)
    if rc != 0 or not samples:
        return {"error": "tmbpf run exited %d%s" % (rc, "" if samples else ", no BENCH line")}
    result = summarize_bpf(samples[0]["progs"], samples[0]["maps"])
    result["tmbpf"] = parse_tmbpf_stderr(err)
    result["counters"] = tmbpf_counters(err)
    m = re.search(r"coverage (\w+)", err)
    result["coverage"] = m.group(1) if m else None
    return result


def memory_run(python, args):
    """Marginal tmbpf memory (BPF maps + RSS) per live block, from bench_retain.py."""
    samples = {}

    def sample(k, fields, pid):
        samples[k] = (bpf_sample(pid), int(fields.get("blocks", 0)))

    cmd = [args.tmbpf, "run", "--frames", "25", "--", python, os.path.join(HERE, "bench_retain.py")]
    rc, err = held_run(cmd, base_env(args), sample, args.timeout)
    if rc != 0 or len(samples) != 2:
        return {"error": "tmbpf run exited %d" % rc}
    (a, blocks_a), (b, blocks_b) = samples[1], samples[2]
    # live_blocks is preallocated (its memlock is fixed at creation): a kept
    # block costs one of its slots, memlock / max_entries; the other maps
    # (stacks) grow with use and are measured as growth.
    def split(maps):
        live = [m for m in maps if m.get("name") == "live_blocks"]
        rest = sum(m.get("bytes_memlock", 0) for m in maps if m.get("name") != "live_blocks")
        return live, rest
    live_a, rest_a = split(a["maps"])
    live_b, rest_b = split(b["maps"])
    dblocks = blocks_b - blocks_a
    if dblocks <= 0:
        return {"error": "no live blocks retained"}
    if not live_b or not live_b[0].get("max_entries"):
        return {"na": "tmbpf's live_blocks map not found"}
    reserved = live_b[0].get("bytes_memlock", 0)
    slot = reserved / float(live_b[0]["max_entries"])
    maps_bytes = slot + max(rest_b - rest_a, 0) / float(dblocks)
    rss = (b["rss"] - a["rss"]) / float(dblocks)
    return {"blocks": dblocks, "maps_bytes": maps_bytes, "rss_bytes": rss,
            "total_bytes": maps_bytes + rss, "maps_total": rest_b + reserved,
            "reserved": reserved, "capacity": live_b[0]["max_entries"]}


def summarize_bpf(progs, maps):
    per = []
    for p in progs:
        cnt, ns = p.get("run_cnt", 0), p.get("run_time_ns", 0)
        per.append({"name": p.get("name", "?"), "run_cnt": cnt, "run_time_ns": ns})
    total_cnt = sum(p["run_cnt"] for p in per)
    total_ns = sum(p["run_time_ns"] for p in per)
    mem = sum(m.get("bytes_memlock", 0) for m in maps)
    return {"progs": per, "run_cnt": total_cnt, "run_time_ns": total_ns,
            "ns_per_run": (total_ns / total_cnt) if total_cnt else None,
            "map_bytes": mem, "nprogs": len(per)}


def median(xs):
    return statistics.median(xs) if xs else None


def paired_ratio(runs, num, den):
    """Median over repetitions of runs[num][r] / runs[den][r] (same repetition only)."""
    ratios = [a / b for a, b in zip(runs.get(num, []), runs.get(den, [])) if a and b]
    return median(ratios)


def measure(interp, python, workloads, variants, args, tb_ok, so):
    """Timed runs (interleaved), then counting and statistics runs, for one interpreter.
    Returns (rows by workload, memory-per-block result or None)."""
    env = base_env(args)
    rows = {}
    for w in workloads:
        script = os.path.join(HERE, "bench_%s.py" % w)
        runs = {v: [] for v in variants}
        errors = []
        drops = []
        tinfo = []
        for rep in range(args.reps):
            order = variants[rep % len(variants):] + variants[:rep % len(variants)]
            for v in order:
                res = run_once(v, python, script, args, env)
                if "error" in res:
                    errors.append("%s rep %d: %s" % (v, rep + 1, res["error"]))
                    runs[v].append(None)
                    continue
                runs[v].append(res["seconds"])
                if "tmbpf" in res:
                    drops.append(res["tmbpf"]["drops"])
                    tinfo.append(res["tmbpf"])
        row = {"runs": runs, "errors": errors, "drops": drops, "tmbpf": tinfo}
        row["median"] = {v: median([s for s in runs[v] if s]) for v in variants}
        row["ratio"] = {v: paired_ratio(runs, v, "untraced") for v in TRACED if v in variants}
        row["tb25_tm25"] = paired_ratio(runs, "tb25", "tm25")
        row["tb25_tm1"] = paired_ratio(runs, "tb25", "tm1")
        row["events"] = count_events(python, script, so, args) if so and not args.no_count else None
        rows[w] = row
        log("%s %s: %s%s" % (interp, w, "  ".join(
            "%s=%s" % (v, fmt(row["median"][v], "%.3fs")) for v in variants),
            ("  ERRORS: " + "; ".join(errors)) if errors else ""))
    memory = None
    if tb_ok and not args.no_bpf_stats:
        with BpfStats():
            for w in workloads:
                script = os.path.join(HERE, "bench_%s.py" % w)
                rows[w]["bpf"] = stats_run(python, script, args)
        memory = memory_run(python, args)
    return rows, memory


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--all-pythons", action="store_true",
                    help="pyenv 3.8-3.13 (plus Debian 3.11) instead of pyenv 3.12 + Debian 3.11")
    ap.add_argument("--python", action="append", metavar="PATH",
                    help="benchmark this interpreter (repeatable; replaces the default set)")
    ap.add_argument("--no-debian", action="store_true", help="leave out /usr/bin/python3.11")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help="comma-separated subset of %s" % ",".join(WORKLOADS))
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help="comma-separated subset of %s (untraced is always run)"
                    % ",".join(VARIANTS))
    ap.add_argument("--reps", type=int, default=3, help="repetitions, median taken (default 3)")
    ap.add_argument("--scale", type=float, default=0.2,
                    help="work size; 1.0 = ~0.35 s untraced on pyenv 3.12 (default 0.2, which "
                         "keeps make bench near 10 minutes with 25-frame tracers ~50-100x)")
    ap.add_argument("--depth", type=int, default=30,
                    help="Python stack depth the workloads run at (default 30)")
    ap.add_argument("--tmbpf", default=os.path.join(REPO, "tmbpf"), help="tmbpf binary")
    ap.add_argument("--timeout", type=int, default=RUN_TIMEOUT_S, help="per-run timeout, s")
    ap.add_argument("--no-count", action="store_true", help="skip the allocation counting runs")
    ap.add_argument("--no-bpf-stats", action="store_true", help="skip the BPF statistics runs")
    ap.add_argument("--md", default=os.path.join(REPO, "build", "bench-capture.md"),
                    help="markdown output (default build/bench-capture.md)")
    ap.add_argument("--acceptance", action="store_true",
                    help="check issue 4's criteria, print PASS/FAIL, exit 1 on any FAIL")
    args = ap.parse_args(argv)
    args.workloads = [w for w in args.workloads.split(",") if w]
    args.variants = [v for v in args.variants.split(",") if v]
    bad = [w for w in args.workloads if w not in WORKLOADS] + \
          [v for v in args.variants if v not in VARIANTS]
    if bad or args.reps < 1 or args.scale <= 0:
        ap.error("unknown workload/variant %s or bad --reps/--scale" % ",".join(bad))
    if "untraced" not in args.variants:
        args.variants.insert(0, "untraced")
    args.variants = [v for v in VARIANTS if v in args.variants]
    if args.acceptance:
        for v in ("tm1", "tm25", "tb25"):
            if v not in args.variants:
                ap.error("--acceptance needs variant %s" % v)
        if args.no_count or args.no_bpf_stats:
            ap.error("--acceptance needs the counting and statistics runs")
    args.tmbpf_shown = (os.path.relpath(args.tmbpf, REPO) if os.path.abspath(args.tmbpf)
                        .startswith(REPO + os.sep) else args.tmbpf)
    args.tmbpf = os.path.abspath(args.tmbpf)
    return args


def pin_tmbpf(args):
    """Copy ./tmbpf aside so that every run measures one build, even if tmbpf is rebuilt while
    the benchmark runs (the skeleton embeds the BPF object). Returns the temporary folder."""
    args.tmbpf_id = "absent"
    if not os.access(args.tmbpf, os.X_OK):
        return None
    import hashlib
    with open(args.tmbpf, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    built = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(os.path.getmtime(args.tmbpf)))
    args.tmbpf_id = "%s built %s, sha256 %s" % (args.tmbpf_shown, built, digest)
    tmp = tempfile.mkdtemp(prefix="tmbench-bin.")
    copy = os.path.join(tmp, "tmbpf")
    shutil.copy2(args.tmbpf, copy)
    args.tmbpf = copy
    log("measuring %s" % args.tmbpf_id)
    return tmp


def main(argv):
    args = parse_args(argv)
    pinned = pin_tmbpf(args)
    try:
        return run_all(args)
    finally:
        if pinned:
            shutil.rmtree(pinned, ignore_errors=True)


def run_all(args):
    # SIGTERM unwinds like Ctrl-C: running children are killed, statistics switched back.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    args.load_at_start = "%.1f" % os.getloadavg()[0]
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        log("load average %.1f on %d CPUs: other work competes with the timed runs"
            % (os.getloadavg()[0], os.cpu_count() or 1))
    t0 = time.monotonic()
    interps = choose_interpreters(args)
    so = None if args.no_count else build_counter(args)
    results = {}
    failed = False
    for interp, python in interps:
        tb_ok, tb_reason = False, "not requested"
        variants = list(args.variants)
        if any(v.startswith("tb") for v in variants):
            tb_ok, tb_reason = tmbpf_status(args.tmbpf, python, args.tmbpf_shown)
            if not tb_ok:
                log("%s: tmbpf: not available (%s)" % (interp, tb_reason))
                variants = [v for v in variants if not v.startswith("tb")]
        with open(STATS_SYSCTL) as f:
            stats_on = f.read().strip() != "0"
        rows, memory = measure(interp, python, args.workloads, variants, args, tb_ok, so)
        for w in args.workloads:
            for v in VARIANTS:
                rows[w]["median"].setdefault(v, None)
                rows[w]["runs"].setdefault(v, [])
            failed |= bool(rows[w]["errors"])
            failed |= "error" in (rows[w].get("bpf") or {})
        failed |= bool(memory and "error" in memory)
        results[interp] = {"rows": rows, "tb_ok": tb_ok, "tb_reason": tb_reason,
                           "memory": memory, "stats_during_timing": stats_on and tb_ok}
        print_table(interp, results[interp], args.workloads, args)
        sys.stdout.flush()
    elapsed = time.monotonic() - t0
    write_markdown(args.md, results, args.workloads, args, started, elapsed)
    print("\nwrote %s (%.0f s)" % (args.md, elapsed))
    if failed:
        log("some runs failed (see the table and %s)" % args.md)
    if args.acceptance and not acceptance(results, args.workloads):
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
