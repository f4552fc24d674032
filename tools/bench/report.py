"""Reporting for the capture benchmark: text table, markdown, acceptance verdicts.

Rows come from driver.measure(): per workload, runs[variant] (seconds per repetition), median,
ratio (paired traced/untraced), tb25_tm25, tb25_tm1, events (counting run), drops and tmbpf
(parsed stderr of the timed tmbpf runs), bpf (statistics run).
"""
import math
import os

VARIANTS = ["untraced", "tm1", "tm25", "tb1", "tb25"]
TRACED = VARIANTS[1:]
MIN_SEEN = 0.90     # acceptance: share of all malloc calls (libc-internal ones included) tmbpf records

def bpf_per_alloc(row):
    """(BPF ns per tmbpf-recorded allocation, tmbpf allocs / allocation calls), or Nones."""
    b = row.get("bpf") or {}
    allocs = (b.get("counters") or {}).get("allocs")
    ns = b["run_time_ns"] / float(allocs) if allocs and b.get("run_time_ns") else None
    total = (row.get("events") or {}).get("allocs_total")
    cov = allocs / float(total) if allocs is not None and total else None
    return ns, cov


# ---------------------------------------------------------------------------------------------
# numbers and their formatting

def geomean(xs):
    xs = [x for x in xs if x]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def fmt(x, spec="%.2f", none="-"):
    return none if x is None else spec % x


def fmt_x(x):
    return "-" if x is None else "%.2fx" % x


def added_ns(row, variant):
    """Nanoseconds a variant adds per counted allocation event (median seconds)."""
    ev = row["events"]["allocs"] if row.get("events") else None
    t, u = row["median"].get(variant), row["median"].get("untraced")
    if not ev or t is None or u is None:
        return None
    return (t - u) / ev * 1e9


def fmt_rate(events, seconds):
    if not events or not seconds:
        return "-"
    return "%.2fM" % (events / seconds / 1e6)


# ---------------------------------------------------------------------------------------------
# tables and verdicts

def summary(rows, workloads):
    s = {}
    for key in TRACED:
        s[key] = geomean([rows[w]["ratio"].get(key) for w in workloads])
    s["tb25_tm25"] = geomean([rows[w]["tb25_tm25"] for w in workloads])
    s["tb25_tm1"] = geomean([rows[w]["tb25_tm1"] for w in workloads])
    return s


def drops_text(row):
    if not row["drops"]:
        return "-"
    if any(d is None for d in row["drops"]):
        return "not reported"
    return str(sum(row["drops"]))


def coverage_text(row):
    """tmbpf's own coverage statement, if any run printed one that is not 'full'."""
    modes = {t.get("coverage") for t in row["tmbpf"] if t.get("coverage")}
    b = row.get("bpf") or {}
    if b.get("coverage"):
        modes.add(b["coverage"])
    return ",".join(sorted(modes)) if modes else None


def table_rows(rows, workloads, tb_ok):
    """Cells shared by the text and markdown tables."""
    out = []
    for w in workloads:
        r = rows[w]
        ev = r["events"]["allocs"] if r["events"] else None
        ns, cov = bpf_per_alloc(r)
        out.append({
            "workload": w, "untraced": fmt(r["median"]["untraced"], "%.3f"),
            "tm1": fmt_x(r["ratio"].get("tm1")), "tm25": fmt_x(r["ratio"].get("tm25")),
            "tb1": fmt_x(r["ratio"].get("tb1")), "tb25": fmt_x(r["ratio"].get("tb25")),
            "tb25/tm25": fmt(r["tb25_tm25"]), "tb25/tm1": fmt(r["tb25_tm1"]),
            "allocs": "{:,}".format(ev) if ev is not None else "-",
            "Mev/s unt": fmt_rate(ev, r["median"]["untraced"]),
            "Mev/s trc": fmt_rate(ev, r["median"].get("tb25" if tb_ok else "tm25")),
            "drops": drops_text(r),
            "bpf ns/alloc": fmt(ns, "%.0f"), "seen": fmt(cov * 100 if cov is not None else None,
                                                         "%.0f%%"),
        })
    s = summary(rows, workloads)
    out.append({"workload": "geomean", "untraced": "", "tm1": fmt_x(s["tm1"]),
                "tm25": fmt_x(s["tm25"]), "tb1": fmt_x(s["tb1"]), "tb25": fmt_x(s["tb25"]),
                "tb25/tm25": fmt(s["tb25_tm25"]), "tb25/tm1": fmt(s["tb25_tm1"]),
                "allocs": "", "Mev/s unt": "", "Mev/s trc": "", "drops": "",
                "bpf ns/alloc": "", "seen": ""})
    return out


COLUMNS = [("workload", 9), ("untraced", 8), ("tm1", 7), ("tm25", 8), ("tb1", 7), ("tb25", 8),
           ("tb25/tm25", 9), ("tb25/tm1", 8), ("allocs", 10), ("Mev/s unt", 9),
           ("Mev/s trc", 9), ("drops", 6), ("bpf ns/alloc", 12), ("seen", 5)]


def print_table(interp, res, workloads, args):
    rows, tb_ok = res["rows"], res["tb_ok"]
    print()
    print("== %s  (scale %.2f, depth %d, median of %d interleaved repetitions)"
          % (interp, args.scale, args.depth, args.reps))
    if not tb_ok:
        print("tmbpf: not available (%s)" % res["tb_reason"])
    hdr = " ".join(("%-*s" if i == 0 else "%*s") % (wd, name)
                   for i, (name, wd) in enumerate(COLUMNS))
    print(hdr)
    print("-" * len(hdr))
    for cells in table_rows(rows, workloads, tb_ok):
        print(" ".join(("%-*s" if i == 0 else "%*s") % (wd, cells[name])
                       for i, (name, wd) in enumerate(COLUMNS)))
    print("untraced: median seconds of the timed window; tm/tb: traced/untraced; allocs: "
          "allocation calls in the window (counted: PYTHONMALLOC=malloc + malloc_count.so); "
          "Mev/s: millions of allocations per second untraced and under %s; bpf ns/alloc: "
          "run_time_ns of all tmbpf programs / allocations tmbpf recorded; seen: those / "
          "allocation calls up to the end of the window"
          % ("tmbpf --frames 25" if tb_ok else "tracemalloc=25"))
    print("ns added per allocation event (tm1/tm25/tb1/tb25): " + "; ".join(
        "%s %s" % (w, "/".join(fmt(added_ns(rows[w], v), "%.0f") for v in TRACED))
        for w in workloads))
    for w in workloads:
        cov = coverage_text(rows[w])
        if cov and cov != "full":
            print("tmbpf coverage on %s: %s (tmbpf's own statement)" % (w, cov))
        b = rows[w].get("bpf")
        if b and "error" in b:
            print("bpf statistics run for %s failed: %s" % (w, b["error"]))
    m = res.get("memory")
    if m and "na" in m:
        print("tmbpf memory per live block: not measured (%s)" % m["na"])
    elif m and "error" not in m:
        print("tmbpf memory per live block (marginal, %d blocks kept): %.0f B in BPF maps + "
              "%.0f B tmbpf RSS = %.0f B; live_blocks reserves %.0f MiB for %d blocks at start"
              % (m["blocks"], m["maps_bytes"], m["rss_bytes"], m["total_bytes"],
                 m.get("reserved", 0) / 1048576.0, m.get("capacity", 0)))
    elif m:
        print("tmbpf memory per live block: failed (%s)" % m["error"])
    if res.get("stats_during_timing"):
        print("note: kernel.bpf_stats_enabled was 1 during the timed runs (set outside this "
              "benchmark): tmbpf timings include the statistics' clock reads")


def write_markdown(path, results, workloads, args, started, elapsed):
    lines = ["## Capture overhead (tools/bench_capture.sh)", "",
             "Run %s, %.0f s, %d CPUs, load average %s at the start and %.1f at the end; "
             "scale %.2f, stack depth %d, median of %d interleaved repetitions; "
             "ratios are traced/untraced seconds of the timed window, paired per repetition. "
             "tm = `-X tracemalloc=N`, tb = `tmbpf run --frames N` (%s)."
             % (started, elapsed, os.cpu_count() or 0, args.load_at_start, os.getloadavg()[0],
                args.scale, args.depth, args.reps, args.tmbpf_id), ""]
    for interp, res in results.items():
        rows, tb_ok = res["rows"], res["tb_ok"]
        lines += ["### %s" % interp, ""]
        if not tb_ok:
            lines += ["tmbpf: not available (%s)." % res["tb_reason"], ""]
        names = [n for n, _ in COLUMNS]
        lines.append("| " + " | ".join(names).replace("Mev/s trc", "Mev/s " + (
            "tb25" if tb_ok else "tm25")) + " |")
        lines.append("|---" + "|---:" * (len(names) - 1) + "|")
        for cells in table_rows(rows, workloads, tb_ok):
            lines.append("| " + " | ".join(cells[n] for n in names) + " |")
        lines += ["", "Time added per allocation event, ns ((traced - untraced median seconds) / "
                  "allocation calls in the window):", "",
                  "| workload | tm1 | tm25 | tb1 | tb25 |", "|---|---:|---:|---:|---:|"]
        for w in workloads:
            lines.append("| %s | %s |" % (w, " | ".join(fmt(added_ns(rows[w], v), "%.0f")
                                                      for v in TRACED)))
        lines.append("")
        covs = [(w, coverage_text(rows[w])) for w in workloads]
        covs = [(w, c) for w, c in covs if c and c != "full"]
        if covs:
            lines += ["tmbpf's coverage statement: " + ", ".join("%s %s" % wc for wc in covs)
                      + ".", ""]
        bpf_rows = [(w, rows[w].get("bpf")) for w in workloads if rows[w].get("bpf")]
        if bpf_rows:
            lines += ["BPF statistics (a separate `tmbpf run -v --frames 25` per workload, "
                      "run-time statistics on, read while the target is held after its "
                      "workload; whole process):", "",
                      "| workload | program | runs | ns/run |", "|---|---|---:|---:|"]
            for w, b in bpf_rows:
                if "error" in b:
                    lines.append("| %s | (failed: %s) | | |" % (w, b["error"]))
                    continue
                for p in b["progs"]:
                    lines.append("| %s | %s | %d | %s |" % (
                        w, p["name"], p["run_cnt"],
                        fmt(p["run_time_ns"] / p["run_cnt"] if p["run_cnt"] else None, "%.0f")))
                ns, cov = bpf_per_alloc(rows[w])
                lines.append("| %s | **all**, per recorded allocation: %s ns (tmbpf recorded %s "
                             "allocations) | %d | %s |" % (
                                 w, fmt(ns, "%.0f"),
                                 (b.get("counters") or {}).get("allocs", "?"),
                                 b["run_cnt"], fmt(b["ns_per_run"], "%.0f")))
            lines.append("")
        m = res.get("memory")
        if m and "na" in m:
            lines += ["tmbpf memory per live block: not measured (%s)." % m["na"], ""]
        elif m and "error" not in m:
            lines += ["tmbpf memory per live block (bench_retain.py, marginal over %d kept "
                      "blocks): %.0f B in BPF maps + %.0f B tmbpf RSS = **%.0f B**; the "
                      "preallocated live_blocks map reserves %.0f MiB for %d blocks at start "
                      "(`--max-blocks`)."
                      % (m["blocks"], m["maps_bytes"], m["rss_bytes"], m["total_bytes"],
                         m.get("reserved", 0) / 1048576.0, m.get("capacity", 0)), ""]
        elif m:
            lines += ["tmbpf memory per live block: failed (%s)." % m["error"], ""]
        if res.get("stats_during_timing"):
            lines += ["Note: kernel.bpf_stats_enabled was 1 during the timed runs (set outside "
                      "this benchmark).", ""]
        errs = [(w, e) for w in workloads for e in rows[w]["errors"]]
        if errs:
            lines += ["Failed runs:", ""] + ["- %s: %s" % (w, e) for w, e in errs] + [""]
        raw = ["- %s: %s" % (w, ", ".join("%s %s" % (v, "/".join(fmt(x, "%.3f") for x in
                                                               rows[w]["runs"][v]))
                                          for v in VARIANTS if rows[w]["runs"][v]))
               for w in workloads]
        lines += ["Raw seconds per repetition:", ""] + raw + [""]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def acceptance(results, workloads):
    """Issue 4's criteria; prints PASS/FAIL lines, returns True if all pass."""
    ok = True

    def verdict(passed, text):
        print("%s %s" % ("PASS" if passed else "FAIL", text))
        return bool(passed)

    print()
    for interp, res in results.items():
        rows = res["rows"]
        if not res["tb_ok"]:
            ok &= verdict(False, "%s: tmbpf: not available (%s)" % (interp, res["tb_reason"]))
            continue
        for w in workloads:
            r = rows[w]["tb25_tm25"]
            ok &= verdict(r is not None and r < 1.0, "%s %s: tmbpf25/tracemalloc25 = %s (< 1)"
                          % (interp, w, fmt(r)))
        g = summary(rows, workloads)["tb25_tm25"]
        ok &= verdict(g is not None and g <= 0.6, "%s: geomean tmbpf25/tracemalloc25 = %s (<= 0.6)"
                      % (interp, fmt(g, "%.3f")))
        drops = [d for w in workloads for d in rows[w]["drops"]]
        dropped = sum(d for d in drops if d)
        unknown = sum(1 for d in drops if d is None)
        ok &= verdict(drops and dropped == 0 and unknown == 0,
                      "%s: drops = %d over %d tmbpf runs%s (== 0)" % (
                          interp, dropped, len(drops),
                          ", %d runs without a drop report" % unknown if unknown else ""))
        for w in workloads:
            # A tracer that misses allocations is cheap for the wrong reason.
            cov_mode = coverage_text(rows[w])
            seen = bpf_per_alloc(rows[w])[1]
            ok &= verdict(cov_mode in (None, "full") and seen is not None and seen >= MIN_SEEN,
                          "%s %s: tmbpf recorded %s of the allocation calls%s (>= %d%%)" % (
                              interp, w, fmt(seen * 100 if seen is not None else None, "%.1f%%"),
                              ", coverage %s" % cov_mode if cov_mode else "", MIN_SEEN * 100))
        g1 = summary(rows, workloads)["tb25_tm1"]
        print("INFO %s: geomean tmbpf25/tracemalloc1 = %s (aim: <= 1)" % (interp, fmt(g1, "%.3f")))
    return ok
