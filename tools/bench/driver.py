"""Capture benchmark driver (issues 4 and 11): tracers side by side, interleaved, as ratios.

For each interpreter and workload it runs every variant (variants.py) once per repetition,
rotating the order from one repetition to the next, so that drift and background load fall on
every variant alike. Variants that record every event (tracemalloc, tmbpf full mode, the
baseline) run at --scale, the light ones (tmbpf's sampled mode, memray) at --light-scale, each
paired with an untraced run at its own scale in the same repetition. Each workload times itself
(warm-up first, start-up excluded) and prints a BENCH line.

Before the timed runs: the calibration line (build/bench/calibrate: what a syscall, an emulated
and an optimized uprobe, a uretprobe and a single-step cost here), the helpers built by make,
the baseline tmbpf built from --baseline-commit (tools/bench/build_baseline.sh), and pinned
copies of both tmbpf binaries, so that a rebuild meanwhile cannot mix two builds in one table.
After them, per interpreter and workload:

  * a counting run per scale (PYTHONMALLOC=malloc + LD_PRELOAD malloc_count.so) counts the
    allocator calls in the timed window;
  * a held statistics run per tmbpf variant (kernel.bpf_stats_enabled on, bpfstats.py) reads
    the BPF program runs and run time of the window;
  * a memory run (bench_retain.py) gives tmbpf's marginal memory per live block.
and the calibration once more at the end.

Exit status: 0 ok, 1 a run failed (or, with --acceptance, a criterion failed), 2 usage.
Runs on any CPython >= 3.8; tools/bench_capture.sh starts it with pyenv's 3.12.
"""
import argparse
import glob
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import acceptance
import report
from bpfstats import BpfStats, memory_run, stats_run, stats_sysctl_on
from runs import base_env, count_events, run_once
from variants import BY_NAME, DEFAULT_NAMES, HERE, NAMES, Availability, Interp, which

REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(REPO, "build", "bench")
WORKLOADS = ["objects", "dictlist", "json", "compile", "classes", "threads"]
BASELINE_COMMIT = "5778d78"     # the capture before issue 11 (docs/performance.md)
SID_ROOT = "/var/cache/tmbpf-test/sid"
SID_PYTHON = "/usr/bin/python3.14"
RUN_TIMEOUT_S = 300


def log(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


# ---------------------------------------------------------------------------------------------
# interpreters

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


def interpreter_version(interp):
    try:
        out = subprocess.run(interp.argv() + ["-c", "import sys; print('%d.%d.%d' % "
                                              "sys.version_info[:3])"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        return None, str(e)
    if out.returncode != 0:
        return None, report_line(out.stderr, "exit %d" % out.returncode)
    return out.stdout.strip(), ""


def report_line(text, fallback):
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else fallback


def host_interpreters(args):
    """[Interp] of the host; exit 1 naming what is missing."""
    root = pyenv_root()
    wanted = []
    if args.python:
        wanted = [(None, p) for p in args.python]
    else:
        for minor in ([8, 9, 10, 11, 12, 13] if args.all_pythons else [12]):
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
        if kind is None:
            kind = "pyenv" if path.startswith(root) else ("debian" if path.startswith("/usr/bin/")
                                                          else "python")
        interp = Interp(None, path)
        ver, why = interpreter_version(interp)
        if not ver:
            log("%s does not run (%s)" % (path, why))
            sys.exit(1)
        interp.label = "%s-%s" % (kind, ver)
        result.append(interp)
    return result


def memray_interpreter(args):
    """(Interp, "") for the CPython of the Debian root that has memray, or (None, reason)."""
    root = os.path.abspath(args.memray_root)
    if not os.path.isdir(os.path.join(root, "usr", "bin")):
        return None, ("no Debian sid root at %s (debootstrap sid there, then apt-get install "
                      "python3.14 python3-memray in it; --memray-root)" % root)
    if not which("unshare") or not which("chroot"):
        return None, "unshare or chroot is missing (apt-get install util-linux coreutils)"
    if os.geteuid() != 0:
        return None, "chroot needs root"
    interp = Interp(None, args.memray_python, root=root)
    ver, why = interpreter_version(interp)
    if not ver:
        return None, "%s in %s does not run (%s)" % (args.memray_python, root, why)
    interp.label = "%s-%s" % (os.path.basename(root.rstrip("/")), ver)
    return interp, ""


# ---------------------------------------------------------------------------------------------
# helpers, binaries, calibration

def make_helpers():
    """build/bench/calibrate and malloc_count.so through make (a no-op under make bench)."""
    targets = [os.path.join("build", "bench", t) for t in ("calibrate", "malloc_count.so")]
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    p = subprocess.run(["make", "--no-print-directory", "-s", "-C", REPO] + targets,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                       universal_newlines=True)
    if p.returncode != 0:
        log("make %s failed: %s" % (" ".join(targets), report_line(p.stdout, "?")))


def build_baseline(args):
    """(path, "") of the baseline tmbpf built from args.baseline_commit, or (None, reason)."""
    out = os.path.join(BUILD, "baseline")
    log("baseline: tmbpf at commit %s into %s" % (args.baseline_commit,
                                                   os.path.relpath(out, REPO)))
    p = subprocess.run([os.path.join(HERE, "build_baseline.sh"), args.baseline_commit, out],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if p.returncode != 0:
        return None, report_line(p.stderr, "build_baseline.sh exited %d" % p.returncode)
    return os.path.join(out, "tmbpf"), ""


def pin(path, shown, folder):
    """Copy a binary into folder; (copy, "SHOWN built T, sha256 H")."""
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    built = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(os.path.getmtime(path)))
    copy = os.path.join(folder, os.path.basename(os.path.dirname(path)) + "-tmbpf")
    shutil.copy2(path, copy)
    return copy, "%s built %s, sha256 %s" % (shown, built, digest)


def prepare_binaries(args, folder):
    """{kind: pinned path}, {kind: reason when missing}, [descriptions] for tmbpf and baseline."""
    binaries, reasons, ids = {}, {}, []
    wanted = {BY_NAME[v].kind for v in args.variants if BY_NAME[v].is_tmbpf}
    if "tmbpf" in wanted:
        if os.access(args.tmbpf, os.X_OK):
            binaries["tmbpf"], desc = pin(args.tmbpf, args.tmbpf_shown, folder)
            ids.append("tb = " + desc)
        else:
            reasons["tmbpf"] = "%s is not built (make)" % args.tmbpf_shown
    if "baseline" in wanted:
        path, why = build_baseline(args)
        if path:
            binaries["baseline"], desc = pin(path, "baseline commit %s" % args.baseline_commit,
                                             folder)
            ids.append("base = " + desc)
        else:
            reasons["baseline"] = why
    for d in ids:
        log("measuring " + d)
    return binaries, reasons, ids


CALIB_RE = re.compile(r"(syscall|uprobe push|uprobe nop5|uretprobe|single-step|nop5 empty-prog) "
                      r"(\d+) ns")


def calibrate():
    """dict(line, values) from build/bench/calibrate, or dict(error=...)."""
    tool = os.path.join(BUILD, "calibrate")
    if not os.access(tool, os.X_OK):
        return {"error": "%s is not built (make build/bench/calibrate)"
                % os.path.relpath(tool, REPO)}
    try:
        p = subprocess.run([tool], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=60)
    except subprocess.TimeoutExpired:
        return {"error": "timed out"}
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("calibration:")), None)
    if p.returncode != 0 or not line:
        return {"error": report_line(p.stderr, "exit %d" % p.returncode)}
    values = {k: float(v) for k, v in CALIB_RE.findall(line)}
    if "(int3)" in line:
        values["nop5 not optimized"] = 1.0
    return {"line": line, "values": values}


# ---------------------------------------------------------------------------------------------
# measuring one interpreter

def plan(interp, args, avail):
    """(variants to run on interp, {variant: reason} for those that cannot, {variant: notes})."""
    run, missing, notes = [], {}, {}
    for name in args.variants:
        ok, why, said = avail.check(BY_NAME[name], interp)
        if ok:
            run.append(name)
            if said:
                notes[name] = said
        else:
            missing[name] = why
            log("%s: %s: not available (%s)" % (interp.label, name, why))
    return run, missing, notes


def new_row(variants, args):
    groups = {"full": {"scale": args.scale, "runs": {}}}
    if any(BY_NAME[v].light for v in variants):
        groups["light"] = {"scale": args.light_scale, "runs": {}}
    for v in variants:
        for name, g in groups.items():
            if v == "untraced" or report.group_name(v) == name:
                g["runs"][v] = []
    return {"groups": groups, "errors": [], "drops": {}, "coverage": {}, "notes": {}, "bpf": {}}


def timed_runs(interp, w, variants, args, binaries):
    """Every (group, variant) once per repetition, order rotated; the workload's row. The
    light group has more repetitions (--light-reps): its runs are short and its ratios close
    to 1, where the machine's noise matters most."""
    row = new_row(variants, args)
    reps = {"full": args.reps, "light": args.light_reps}
    keys = [(g, v) for g in sorted(row["groups"]) for v in row["groups"][g]["runs"]]
    envs = {g: base_env(args, row["groups"][g]["scale"]) for g in row["groups"]}
    for rep in range(max(reps[g] for g in row["groups"])):
        now = [(g, v) for g, v in keys if rep < reps[g]]
        k = rep % len(now)
        for g, v in now[k:] + now[:k]:
            res = run_once(BY_NAME[v], interp, w, args, binaries, envs[g],
                           "%s-%s-%d" % (w, g, rep))
            if "error" in res:
                row["errors"].append("%s (%s scale) rep %d: %s" % (v, g, rep + 1, res["error"]))
                row["groups"][g]["runs"][v].append(None)
                continue
            row["groups"][g]["runs"][v].append(res["seconds"])
            if "tmbpf" in res:
                t = res["tmbpf"]
                row["drops"].setdefault(v, []).append(t["drops"])
                if t["coverage"]:
                    row["coverage"].setdefault(v, set()).add(t["coverage"])
                for n in t["notes"]:
                    if n not in row["notes"].setdefault(v, []):
                        row["notes"][v].append(n)
    return row


def measure(interp, variants, args, binaries):
    """Timed runs, counting runs, then statistics and memory runs, for one interpreter."""
    rows = {}
    for w in args.workloads:
        row = timed_runs(interp, w, variants, args, binaries)
        if not args.no_count:
            for g in row["groups"].values():
                g["events"] = count_events(interp, w, g["scale"], args)
                if "error" in g["events"]:
                    row["errors"].append("counting run at scale %.3g: %s"
                                         % (g["scale"], g["events"]["error"]))
        rows[w] = row
        log("%s %s: %s%s" % (interp.label, w, "  ".join(
            "%s=%s" % (v if g == "full" or v != "untraced" else "untraced(light)",
                       report.fmt(report.median(xs), "%.3fs"))
            for g, grp in sorted(row["groups"].items()) for v, xs in grp["runs"].items()),
            "  ERRORS: " + "; ".join(row["errors"]) if row["errors"] else ""))
    tmbpf_variants = [v for v in variants if BY_NAME[v].is_tmbpf]
    memory = None
    if tmbpf_variants and not args.no_bpf_stats:
        with BpfStats():
            for w in args.workloads:
                for v in tmbpf_variants:
                    var = BY_NAME[v]
                    cmd = ([binaries[var.kind], "run", "-v"] + var.flags + ["--"] + interp.argv()
                           + [interp.script(w)])
                    scale = rows[w]["groups"][report.group_name(v)]["scale"]
                    b = stats_run(cmd, base_env(args, scale), args.timeout,
                                  (interp.dir_host, interp.dir_in))
                    rows[w]["bpf"][v] = b
                    if "error" in b:
                        rows[w]["errors"].append("statistics run of %s: %s" % (v, b["error"]))
        mem_variant = next((v for v in ("tb25", "base25") if v in tmbpf_variants), None)
        if mem_variant:
            var = BY_NAME[mem_variant]
            cmd = ([binaries[var.kind], "run"] + var.flags + ["--"] + interp.argv()
                   + [os.path.join(os.path.dirname(interp.script("x")), "bench_retain.py")])
            memory = memory_run(cmd, base_env(args, args.scale), args.timeout,
                                (interp.dir_host, interp.dir_in))
            memory["variant"] = mem_variant
    return rows, memory


def merged_notes(rows, workloads, first):
    """{variant: statements} from the availability check and every timed run."""
    notes = {v: list(n) for v, n in first.items()}
    for w in workloads:
        for v, said in rows[w]["notes"].items():
            for n in said:
                if n not in notes.setdefault(v, []):
                    notes[v].append(n)
    return notes


# ---------------------------------------------------------------------------------------------
# command line

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--all-pythons", action="store_true",
                    help="pyenv 3.8-3.13 (plus Debian 3.11) instead of pyenv 3.12 + Debian 3.11")
    ap.add_argument("--python", action="append", metavar="PATH",
                    help="benchmark this host interpreter (repeatable; replaces the default set)")
    ap.add_argument("--no-debian", action="store_true", help="leave out /usr/bin/python3.11")
    ap.add_argument("--memray-root", default=SID_ROOT, metavar="DIR",
                    help="Debian root with python3.14 and python3-memray (default %s)" % SID_ROOT)
    ap.add_argument("--memray-python", default=SID_PYTHON, metavar="PATH",
                    help="its interpreter (default %s)" % SID_PYTHON)
    ap.add_argument("--no-memray", action="store_true", help="leave out the memray interpreter")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help="comma-separated subset of %s" % ",".join(WORKLOADS))
    ap.add_argument("--variants", default=",".join(DEFAULT_NAMES),
                    help="comma-separated subset of %s (default: all but tb1; untraced is "
                         "always run)" % ",".join(NAMES))
    ap.add_argument("--reps", type=int, default=3, help="repetitions, median taken (default 3)")
    ap.add_argument("--light-reps", type=int, default=7,
                    help="repetitions of the light variants and their untraced runs (default 7)")
    ap.add_argument("--scale", type=float, default=0.03,
                    help="work size of the variants that record every event; 1.0 = ~0.35 s "
                         "untraced on pyenv 3.12 (default 0.03: full-mode tracers run 50-1000x)")
    ap.add_argument("--light-scale", type=float, default=1.0,
                    help="work size of the light variants (tb25s, memray) and their untraced "
                         "runs (default 1.0)")
    ap.add_argument("--depth", type=int, default=30,
                    help="Python stack depth the workloads run at (default 30)")
    ap.add_argument("--tmbpf", default=os.path.join(REPO, "tmbpf"), help="tmbpf binary")
    ap.add_argument("--baseline-commit", default=BASELINE_COMMIT,
                    help="commit the baseline tmbpf is built from (default %s)" % BASELINE_COMMIT)
    ap.add_argument("--timeout", type=int, default=RUN_TIMEOUT_S, help="per-run timeout, s")
    ap.add_argument("--no-count", action="store_true", help="skip the allocation counting runs")
    ap.add_argument("--no-bpf-stats", action="store_true",
                    help="skip the BPF statistics and memory runs")
    ap.add_argument("--md", default=os.path.join(REPO, "build", "bench-capture.md"),
                    help="markdown output (default build/bench-capture.md)")
    ap.add_argument("--acceptance", action="store_true",
                    help="check issue 11's criteria, print PASS/FAIL, exit 1 on any FAIL")
    args = ap.parse_args(argv)
    args.workloads = [w for w in args.workloads.split(",") if w]
    asked = [v for v in args.variants.split(",") if v]
    bad = [w for w in args.workloads if w not in WORKLOADS] + [v for v in asked if v not in NAMES]
    if bad or not args.workloads or min(args.reps, args.light_reps) < 1 or args.scale <= 0 \
            or args.light_scale <= 0:
        ap.error("unknown workload/variant %s, or bad --reps/--light-reps/--scale/--light-scale"
                 % ",".join(bad))
    args.variants = [v for v in NAMES if v in asked or v == "untraced"]
    if args.acceptance:
        for v in ("tb25", "base25", "tb25s"):
            if v not in args.variants:
                ap.error("--acceptance needs variant %s" % v)
        if args.no_count or args.no_bpf_stats:
            ap.error("--acceptance needs the counting and statistics runs")
    args.tmbpf = os.path.abspath(args.tmbpf)
    args.tmbpf_shown = (os.path.relpath(args.tmbpf, REPO) if args.tmbpf.startswith(REPO + os.sep)
                        else args.tmbpf)
    return args


def main(argv):
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C: running children are killed, statistics switched back.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    folder = tempfile.mkdtemp(prefix="tmbench-bin.")
    interps = []
    try:
        return run_all(args, folder, interps)
    finally:
        for interp in interps:
            interp.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def run_all(args, folder, interps):
    meta = {"started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load_start": "%.1f" % os.getloadavg()[0], "variants": args.variants}
    t0 = time.monotonic()
    make_helpers()
    meta["calibration"] = calibrate()
    report.print_calibration(meta["calibration"])
    sys.stdout.flush()
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        log("load average %.1f on %d CPUs: other work competes with the timed runs"
            % (os.getloadavg()[0], os.cpu_count() or 1))
    interps += host_interpreters(args)
    host_labels = [i.label for i in interps]
    if not args.no_memray:
        sid, why = memray_interpreter(args)
        if sid:
            interps.append(sid)
        else:
            log("memray: not available (%s)" % why)
    binaries, reasons, meta["binaries"] = prepare_binaries(args, folder)
    avail = Availability(binaries, reasons)
    counter = os.path.join(BUILD, "malloc_count.so")
    counter = counter if os.path.exists(counter) and not args.no_count else None
    results, failed = {}, False
    for interp in interps:
        interp.stage(counter)
        variants, missing, notes = plan(interp, args, avail)
        if interp.root and "memray" not in variants:
            continue    # the Debian root is there for memray only
        stats_on = stats_sysctl_on()
        rows, memory = measure(interp, variants, args, binaries)
        failed |= any(rows[w]["errors"] for w in args.workloads)
        failed |= bool(memory and "error" in memory)
        results[interp.label] = {
            "rows": rows, "variants": variants, "unavailable": missing, "memory": memory,
            "notes": merged_notes(rows, args.workloads, notes),
            "stats_during_timing": stats_on and any(BY_NAME[v].is_tmbpf for v in variants)}
        report.print_result(interp.label, results[interp.label], args.workloads, args)
        sys.stdout.flush()
        interp.cleanup()
    meta["calibration_end"] = calibrate()
    print()
    report.print_calibration(meta["calibration_end"], "end")
    passed = True
    if args.acceptance:
        passed, meta["acceptance"] = acceptance.acceptance(
            results, args.workloads, meta["calibration"], host_labels)
        print()
        print("\n".join(meta["acceptance"]))
    meta["elapsed"] = time.monotonic() - t0
    report.write_markdown(args.md, results, args.workloads, args, meta)
    print("\nwrote %s (%.0f s)" % (args.md, meta["elapsed"]))
    if failed:
        log("some runs failed (see the tables and %s)" % args.md)
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
