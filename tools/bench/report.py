"""Figures, text tables and markdown of the capture benchmark.

A result per interpreter comes from driver.measure(): rows[workload] holds, per group ("full"
at --scale, "light" at --light-scale), the seconds of each repetition of each variant
(runs[variant], untraced included) and the allocation calls of the window (events); drops and
statements of the timed tmbpf runs; bpf[variant], the held statistics run. Every figure below
is computed here from those, and the text and markdown tables render the same cells.
"""
import math
import os
import statistics

from variants import BY_NAME, NAMES


# ---------------------------------------------------------------------------------------------
# figures

def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def geomean(xs):
    xs = [x for x in xs if x]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def group_name(variant):
    return "light" if BY_NAME[variant].light else "full"


def group(row, variant, name=None):
    return row["groups"].get(name or group_name(variant))


def seconds(row, variant, name=None):
    g = group(row, variant, name)
    return median(g["runs"].get(variant, [])) if g else None


def ratio(row, variant):
    """Median over repetitions of variant seconds / untraced seconds of the same repetition, at
    the variant's scale."""
    g = group(row, variant)
    if not g:
        return None
    pairs = zip(g["runs"].get(variant, []), g["runs"].get("untraced", []))
    return median([a / b for a, b in pairs if a and b])


def best_ratio(row, variant):
    """Fastest run of the variant / fastest untraced run at its scale (best of the repetitions):
    the machine's noise only adds time, and for a ratio near 1 it is larger than the effect."""
    g = group(row, variant)
    a = [x for x in g["runs"].get(variant, []) if x] if g else []
    b = [x for x in g["runs"].get("untraced", []) if x] if g else []
    return min(a) / min(b) if a and b else None


def events(row, variant):
    g = group(row, variant)
    ev = g.get("events") if g else None
    return ev if ev and "error" not in ev else None


def calls(ev):
    return ev["allocs"] + ev["frees"] if ev else None


def added_ns(row, variant, per="alloc"):
    """ns a variant adds per allocation (malloc, calloc, realloc) or per allocator call
    (those and free): (median traced - median untraced seconds) / count in the window."""
    ev = events(row, variant)
    t, u = seconds(row, variant), seconds(row, "untraced", group_name(variant))
    n = (ev["allocs"] if per == "alloc" else calls(ev)) if ev else None
    if not n or t is None or u is None:
        return None
    return (t - u) / n * 1e9


def baseline_factor(row, variant="tb25", baseline="base25"):
    """How many times less time per event variant adds than the baseline (same run)."""
    a, b = added_ns(row, variant), added_ns(row, baseline)
    return b / a if a and b is not None and a > 0 else None


def bpf(row, variant):
    b = (row.get("bpf") or {}).get(variant)
    return b if b and "error" not in b else None


def runs_per(row, variant, per="call"):
    """BPF program runs in the window per allocator call (or per allocation)."""
    b, ev = bpf(row, variant), events(row, variant)
    if not b or not ev:
        return None
    n = calls(ev) if per == "call" else ev["allocs"]
    return b["run_cnt"] / float(n) if n else None


def bpf_ns_per_call(row, variant):
    b, ev = bpf(row, variant), events(row, variant)
    return b["run_time_ns"] / float(calls(ev)) if b and ev and calls(ev) else None


def seen(row, variant):
    """Allocations tmbpf recorded (its `allocs` counter, whole process) / allocation calls from
    process start to the end of the window; None for a sampled variant."""
    b, ev = bpf(row, variant), events(row, variant)
    allocs = (b.get("counters") or {}).get("allocs") if b else None
    if BY_NAME[variant].sampled or allocs is None or not ev or not ev["allocs_total"]:
        return None
    return allocs / float(ev["allocs_total"])


def drops(row, variant):
    """(sum of drops, runs reporting none) over the timed runs of a tmbpf variant."""
    ds = row["drops"].get(variant, [])
    return sum(d for d in ds if d), sum(1 for d in ds if d is None), len(ds)


def coverage(row, variant):
    """tmbpf's own coverage statements (timed runs and statistics run)."""
    modes = set(row["coverage"].get(variant, set()))
    b = bpf(row, variant)
    if b and b["tmbpf"].get("coverage"):
        modes.add(b["tmbpf"]["coverage"])
    return ",".join(sorted(modes)) if modes else None


def calib_ratio(calib, num="uprobe push", den="uprobe nop5"):
    v = (calib or {}).get("values") or {}
    return v[num] / v[den] if v.get(num) and v.get(den) else None


# ---------------------------------------------------------------------------------------------
# cells

def fmt(x, spec="%.2f", none="-"):
    return none if x is None else spec % x


def fmt_x(x):
    return fmt(x, "%.2fx")


def fmt_int(x):
    return "-" if x is None else "{:,}".format(x)


def fmt_drops(row, variant):
    total, unknown, n = drops(row, variant)
    if not n:
        return "-"
    return "not reported" if unknown else str(total)


def present(res, light):
    return [v for v in res["variants"] if v != "untraced" and BY_NAME[v].light == light]


def slowdown_table(res, workloads):
    rows = res["rows"]
    full, light = present(res, False), present(res, True)
    cols = ["workload", "untraced s"] + full
    if light:
        cols += ["untraced s (light)"] + [c for v in light for c in (v, v + " best")]
    pair = "tb25" in full and "tm25" in full
    if pair:
        cols.append("tb25/tm25")
    out = []
    for w in workloads:
        r = rows[w]
        c = {"workload": w, "untraced s": fmt(seconds(r, "untraced", "full"), "%.3f"),
             "untraced s (light)": fmt(seconds(r, "untraced", "light"), "%.3f")}
        for v in full + light:
            c[v] = fmt_x(ratio(r, v))
        for v in light:
            c[v + " best"] = fmt_x(best_ratio(r, v))
        if pair:
            c["tb25/tm25"] = fmt(tb25_tm25(r))
        out.append(c)
    g = {"workload": "geomean", "untraced s": "", "untraced s (light)": ""}
    for v in full + light:
        g[v] = fmt_x(geomean([ratio(rows[w], v) for w in workloads]))
    for v in light:
        g[v + " best"] = fmt_x(geomean([best_ratio(rows[w], v) for w in workloads]))
    if pair:
        g["tb25/tm25"] = fmt(geomean([tb25_tm25(rows[w]) for w in workloads]))
    return cols, out + [g]


def tb25_tm25(row):
    g = group(row, "tb25")
    pairs = zip(g["runs"].get("tb25", []), g["runs"].get("tm25", []))
    return median([a / b for a, b in pairs if a and b])


def event_table(res, workloads):
    rows = res["rows"]
    traced = [v for v in res["variants"] if v != "untraced"]
    factor = "tb25" in traced and "base25" in traced
    cols = ["workload", "allocs", "frees", "Mev/s"] + traced + (["base25/tb25"] if factor else [])
    out = []
    for w in workloads:
        r = rows[w]
        ev = events(r, "untraced")
        c = {"workload": w, "allocs": fmt_int(ev and ev["allocs"]),
             "frees": fmt_int(ev and ev["frees"]),
             "Mev/s": fmt(ev["allocs"] / seconds(r, "untraced", "full") / 1e6
                          if ev and seconds(r, "untraced", "full") else None, "%.1f")}
        for v in traced:
            c[v] = fmt(added_ns(r, v), "%.0f")
        if factor:
            c["base25/tb25"] = fmt(baseline_factor(r), "%.2fx")
        out.append(c)
    if factor:
        g = {k: "" for k in cols}
        g.update({"workload": "geomean",
                  "base25/tb25": fmt(geomean([baseline_factor(rows[w]) for w in workloads]),
                                     "%.2fx")})
        out.append(g)
    return cols, out


def kernel_table(res, workloads):
    rows = res["rows"]
    cols = ["workload", "variant", "calls", "runs", "runs/call", "runs/alloc", "ns/run",
            "bpf ns/call", "seen", "drops"]
    out = []
    for w in workloads:
        r = rows[w]
        for v in res["variants"]:
            if not BY_NAME[v].is_tmbpf:
                continue
            b, ev = (r.get("bpf") or {}).get(v), events(r, v)
            c = {"workload": w, "variant": v, "calls": fmt_int(calls(ev)),
                 "drops": fmt_drops(r, v)}
            if b and "error" in b:
                c.update({"runs": "failed"})
            elif b:
                c.update({"runs": fmt_int(b["run_cnt"]),
                          "runs/call": fmt(runs_per(r, v), "%.3f"),
                          "runs/alloc": fmt(runs_per(r, v, "alloc"), "%.3f"),
                          "ns/run": fmt(b["run_time_ns"] / float(b["run_cnt"])
                                        if b["run_cnt"] else None, "%.0f"),
                          "bpf ns/call": fmt(bpf_ns_per_call(r, v), "%.0f"),
                          "seen": fmt(seen(r, v) * 100 if seen(r, v) is not None else None,
                                      "%.1f%%")})
            out.append(c)
    return cols, out


TABLE_NOTES = {
    "slowdown": "untraced s: median seconds of the timed window at --scale (and at "
                "--light-scale for the light variants); a variant: median over repetitions of "
                "its seconds / untraced seconds of the same repetition and scale; V best: "
                "fastest run of V / fastest untraced run (light variants)",
    "event": "allocs: malloc+calloc+realloc calls in the window at --scale, frees: free calls "
             "of non-NULL pointers (PYTHONMALLOC=malloc + malloc_count.so, separate run); "
             "Mev/s: allocs per untraced second; a variant: ns it adds per allocation, "
             "(median traced - median untraced seconds) / allocs (per allocator call: about "
             "half); base25/tb25: how many times less tb25 adds than the baseline",
    "kernel": "held `tmbpf run -v` per variant with kernel.bpf_stats_enabled, read at both "
              "ends of the window: runs = BPF program runs in the window (every kernel entry "
              "that runs a program; an entry+return pair is two), calls = allocs + frees, "
              "ns/run and bpf ns/call = BPF run time; seen = allocations tmbpf recorded (its "
              "allocs counter) / allocation calls from start to the end of the window; drops: "
              "sum over the timed runs",
}


# ---------------------------------------------------------------------------------------------
# rendering

def render_text(cols, cells):
    widths = [max([len(c)] + [len(row.get(c, "")) for row in cells]) for c in cols]
    lines = ["  ".join(("%-*s" if i == 0 else "%*s") % (wd, c) for i, (c, wd)
                       in enumerate(zip(cols, widths)))]
    lines.append("-" * len(lines[0]))
    for row in cells:
        lines.append("  ".join(("%-*s" if i == 0 else "%*s") % (wd, row.get(c, ""))
                               for i, (c, wd) in enumerate(zip(cols, widths))))
    return lines


def render_md(cols, cells):
    left = {"workload", "variant"}
    lines = ["| " + " | ".join(cols) + " |",
             "|" + "|".join("---" if c in left else "---:" for c in cols) + "|"]
    for row in cells:
        lines.append("| " + " | ".join(row.get(c, "") for c in cols) + " |")
    return lines


def availability_lines(res):
    out = []
    for v, reason in res["unavailable"].items():
        out.append("%s: not available (%s)" % (v, reason))
    for v, notes in res["notes"].items():
        for n in notes[:6]:
            out.append("%s: %s" % (v, n))
    return out


def calibration_text(calib):
    if not calib:
        return "calibration: not run"
    if "error" in calib:
        return "calibration: not available (%s)" % calib["error"]
    return calib["line"]


def print_calibration(calib, when=""):
    print(calibration_text(calib) + (" [%s]" % when if when else ""))


def print_result(interp, res, workloads, args):
    print()
    print("== %s  (scale %.3g, light scale %.3g, depth %d, median of %d interleaved "
          "repetitions, %d for the light variants)"
          % (interp, args.scale, args.light_scale, args.depth, args.reps, args.light_reps))
    for ln in availability_lines(res):
        print(ln)
    for key, table in (("slowdown", slowdown_table), ("event", event_table),
                       ("kernel", kernel_table)):
        cols, cells = table(res, workloads)
        if key == "kernel" and not cells:
            continue
        print()
        print("\n".join(render_text(cols, cells)))
        print(TABLE_NOTES[key])
    for w in workloads:
        for v in res["variants"]:
            cov = coverage(res["rows"][w], v) if BY_NAME[v].is_tmbpf else None
            if cov and cov != "full":
                print("%s coverage on %s: %s (tmbpf's own statement)" % (v, w, cov))
    m = res.get("memory")
    if m:
        print(memory_text(m))
    if res.get("stats_during_timing"):
        print("note: kernel.bpf_stats_enabled was 1 during the timed runs (set outside this "
              "benchmark): tmbpf timings include the statistics' clock reads")
    for w in workloads:
        for e in res["rows"][w]["errors"]:
            print("failed run: %s %s" % (w, e))


def memory_text(m):
    if "na" in m:
        return "tmbpf memory per live block: not measured (%s)" % m["na"]
    if "error" in m:
        return "tmbpf memory per live block: failed (%s)" % m["error"]
    return ("tmbpf memory per live block (%s, bench_retain.py, marginal over %d kept blocks): "
            "%.0f B in BPF maps + %.0f B tmbpf RSS = %.0f B; live_blocks reserves %.0f MiB for "
            "%d blocks at start (--max-blocks)"
            % (m["variant"], m["blocks"], m["maps_bytes"], m["rss_bytes"], m["total_bytes"],
               m.get("reserved", 0) / 1048576.0, m.get("capacity", 0)))


def program_lines(res, workloads):
    out = []
    for w in workloads:
        for v, b in sorted((res["rows"][w].get("bpf") or {}).items()):
            if "error" in b:
                continue
            for p in b["progs"]:
                if p["run_cnt"]:
                    out.append("| %s | %s | %s | %s | %s |" % (
                        w, v, p["name"], fmt_int(p["run_cnt"]),
                        fmt(p["run_time_ns"] / float(p["run_cnt"]), "%.0f")))
    if not out:
        return []
    return (["BPF programs in the window (programs that ran):", "",
             "| workload | variant | program | runs | ns/run |", "|---|---|---|---:|---:|"]
            + out + [""])


def write_markdown(path, results, workloads, args, meta):
    lines = ["## Capture overhead (tools/bench_capture.sh)", "",
             "`%s` (start), `%s` (end); push/nop5 %s." % (
                 calibration_text(meta["calibration"]), calibration_text(meta["calibration_end"]),
                 fmt(calib_ratio(meta["calibration"]), "%.1fx")), "",
             "Run %s, %.0f s, %d CPUs, load average %s at the start and %.1f at the end; "
             "scale %.3g (light variants %.3g), stack depth %d, median of %d interleaved "
             "repetitions (light variants %d); ratios are traced/untraced seconds of the timed "
             "window, paired per repetition. Binaries: %s." % (
                 meta["started"], meta["elapsed"], os.cpu_count() or 0, meta["load_start"],
                 os.getloadavg()[0], args.scale, args.light_scale, args.depth, args.reps,
                 args.light_reps,
                 "; ".join(meta["binaries"]) or "none"), "",
             "Variants: " + "; ".join("%s %s%s" % (BY_NAME[n].name, BY_NAME[n].what,
                                                   " (light)" if BY_NAME[n].light else "")
                                      for n in NAMES if n in meta["variants"]) + ".", ""]
    for interp, res in results.items():
        lines += ["### %s" % interp, ""]
        avail = availability_lines(res)
        if avail:
            lines += ["- " + a for a in avail] + [""]
        for key, table in (("slowdown", slowdown_table), ("event", event_table),
                           ("kernel", kernel_table)):
            cols, cells = table(res, workloads)
            if cells:
                lines += render_md(cols, cells) + ["", TABLE_NOTES[key] + ".", ""]
        lines += program_lines(res, workloads)
        if res.get("memory"):
            lines += [memory_text(res["memory"]) + ".", ""]
        if res.get("stats_during_timing"):
            lines += ["Note: kernel.bpf_stats_enabled was 1 during the timed runs (set outside "
                      "this benchmark).", ""]
        errs = ["- %s: %s" % (w, e) for w in workloads for e in res["rows"][w]["errors"]]
        if errs:
            lines += ["Failed runs:", ""] + errs + [""]
        lines += ["Raw seconds per repetition, and allocation calls (allocs/frees) per scale:", ""]
        for w in workloads:
            parts = []
            for gname, g in sorted(res["rows"][w]["groups"].items()):
                ev = g.get("events") or {}
                parts.append("%s (scale %.3g, %s/%s calls): %s" % (
                    gname, g["scale"], fmt_int(ev.get("allocs")), fmt_int(ev.get("frees")),
                    ", ".join("%s %s" % (v, "/".join(fmt(x, "%.3f") for x in xs))
                              for v, xs in g["runs"].items())))
            lines.append("- %s: %s" % (w, "; ".join(parts)))
        lines.append("")
    if meta.get("acceptance"):
        lines += ["Acceptance (issue 11):", "", "```"] + meta["acceptance"] + ["```", ""]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
