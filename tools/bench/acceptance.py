"""Issue 11's acceptance criteria for the capture, checked on one benchmark run.

On every host interpreter measured (pyenv 3.12 and Debian 3.11 by default):
  * full mode (tb25): at most 1.15 BPF program runs per allocator call in the window, on every
    workload; no drops, and at least 90 % of the allocation calls recorded with no partial
    coverage statement (a tracer that misses events is cheap for the wrong reason);
  * full mode adds at least 2.5x less time per allocation event than the baseline build of the
    capture before issue 11 (base25), measured in the same run: the geometric mean over the
    workloads (each workload's factor as INFO: one workload's factor moves by +-30 % run to run
    on the loaded VM, the geomean by less); applicable only where the calibration shows the
    emulated-push uprobe costing at least 3x the optimized 5-byte-nop uprobe (otherwise "N/A");
  * sampled mode at 512 KiB (tb25s): at most 1.10x untraced on every workload, 1.05x geomean,
    0 drops; the slowdown is the best-of-repetitions ratio (fastest tb25s run / fastest
    untraced run: the noise only adds time, and near 1 it is larger than the effect), the
    paired median beside it.
INFO lines add tb25/tm25, the baseline's runs per call and memray's slowdown where it ran.
"""
from report import (baseline_factor, best_ratio, calib_ratio, coverage, drops, fmt, geomean,
                    ratio, runs_per, seen, tb25_tm25)

MAX_RUNS_PER_CALL = 1.15
MIN_BASELINE_FACTOR = 2.5
MIN_PUSH_OVER_NOP5 = 3.0
MAX_SAMPLED = 1.10
MAX_SAMPLED_GEOMEAN = 1.05
MIN_SEEN = 0.90


class Verdicts:
    def __init__(self):
        self.lines = []
        self.ok = True

    def check(self, passed, text):
        self.lines.append("%s %s" % ("PASS" if passed else "FAIL", text))
        self.ok &= bool(passed)

    def na(self, text):
        self.lines.append("N/A  " + text)

    def info(self, text):
        self.lines.append("INFO " + text)


def unavailable(res, variant):
    if variant in res["variants"]:
        return None
    return res["unavailable"].get(variant, "not run (--variants)")


def check_full(v, interp, res, workloads):
    rows = res["rows"]
    why = unavailable(res, "tb25")
    if why:
        v.check(False, "%s: tb25 not available (%s)" % (interp, why))
        return
    for w in workloads:
        r = runs_per(rows[w], "tb25")
        v.check(r is not None and r <= MAX_RUNS_PER_CALL,
                "%s %s: tb25 BPF program runs per allocator call = %s (<= %.2f)"
                % (interp, w, fmt(r, "%.3f"), MAX_RUNS_PER_CALL))
    total, unknown, n = [sum(x) for x in zip(*[drops(rows[w], "tb25") for w in workloads])]
    v.check(n and not total and not unknown, "%s: tb25 drops = %d over %d runs%s (== 0)" % (
        interp, total, n, ", %d without a drop report" % unknown if unknown else ""))
    for w in workloads:
        cov, s = coverage(rows[w], "tb25"), seen(rows[w], "tb25")
        v.check(cov in (None, "full") and s is not None and s >= MIN_SEEN,
                "%s %s: tb25 recorded %s of the allocation calls%s (>= %d%%)" % (
                    interp, w, fmt(s * 100 if s is not None else None, "%.1f%%"),
                    ", coverage %s" % cov if cov else "", MIN_SEEN * 100))


def check_baseline(v, interp, res, workloads, calib):
    rows = res["rows"]
    gate = calib_ratio(calib)
    if gate is None:
        v.check(False, "%s: added time vs baseline: no calibration (%s)" % (
            interp, (calib or {}).get("error", "not run")))
        return
    if gate < MIN_PUSH_OVER_NOP5:
        v.na("%s: added time vs baseline: not applicable (calibration push/nop5 = %.1fx < %.0fx)"
             % (interp, gate, MIN_PUSH_OVER_NOP5))
        return
    for variant in ("tb25", "base25"):
        why = unavailable(res, variant)
        if why:
            v.check(False, "%s: added time vs baseline: %s not available (%s)"
                    % (interp, variant, why))
            return
    factors = [baseline_factor(rows[w]) for w in workloads]
    g = geomean(factors) if all(f is not None and f > 0 for f in factors) else None
    v.check(g is not None and g >= MIN_BASELINE_FACTOR,
            "%s: baseline adds %s the time per allocation event tb25 adds, geomean (>= %.1fx; "
            "calibration push/nop5 %.1fx)" % (interp, fmt(g, "%.2fx"), MIN_BASELINE_FACTOR, gate))
    v.info("%s: baseline/tb25 added time per workload: %s" % (interp, ", ".join(
        "%s %s" % (w, fmt(f, "%.2fx")) for w, f in zip(workloads, factors))))


def check_sampled(v, interp, res, workloads):
    rows = res["rows"]
    why = unavailable(res, "tb25s")
    if why:
        v.check(False, "%s: tb25s not available (%s)" % (interp, why))
        return
    for w in workloads:
        r = best_ratio(rows[w], "tb25s")
        v.check(r is not None and r <= MAX_SAMPLED, "%s %s: tb25s slowdown = %s best of %d "
                "(paired median %s) (<= %.2fx)" % (
                    interp, w, fmt(r, "%.3fx"), sum(1 for x in rows[w]["groups"]["light"]["runs"]["tb25s"] if x),
                    fmt(ratio(rows[w], "tb25s"), "%.3fx"), MAX_SAMPLED))
    g = geomean([best_ratio(rows[w], "tb25s") for w in workloads])
    v.check(g is not None and g <= MAX_SAMPLED_GEOMEAN, "%s: tb25s geomean slowdown = %s best "
            "(paired median %s) (<= %.2fx)" % (
                interp, fmt(g, "%.3fx"),
                fmt(geomean([ratio(rows[w], "tb25s") for w in workloads]), "%.3fx"),
                MAX_SAMPLED_GEOMEAN))
    total, unknown, n = [sum(x) for x in zip(*[drops(rows[w], "tb25s") for w in workloads])]
    v.check(n and not total and not unknown, "%s: tb25s drops = %d over %d runs%s (== 0)" % (
        interp, total, n, ", %d without a drop report" % unknown if unknown else ""))


def info_lines(v, interp, res, workloads):
    rows = res["rows"]
    if "tb25" in res["variants"] and "tm25" in res["variants"]:
        v.info("%s: geomean tb25/tm25 = %s" % (
            interp, fmt(geomean([tb25_tm25(rows[w]) for w in workloads]), "%.3f")))
    for variant in ("base25", "tb25e"):
        if variant in res["variants"]:
            v.info("%s: %s BPF program runs per allocator call: %s" % (
                interp, variant, ", ".join("%s %s" % (w, fmt(runs_per(rows[w], variant),
                                                             "%.2f")) for w in workloads)))
    if "memray" in res["variants"]:
        v.info("%s: memray slowdown (paired median) %s; geomean %s (best of repetitions %s)" % (
            interp, ", ".join("%s %s" % (w, fmt(ratio(rows[w], "memray"), "%.2fx"))
                              for w in workloads),
            fmt(geomean([ratio(rows[w], "memray") for w in workloads]), "%.2fx"),
            fmt(geomean([best_ratio(rows[w], "memray") for w in workloads]), "%.2fx")))


def acceptance(results, workloads, calib, host_labels):
    """Check every host interpreter's result; (all passed, lines)."""
    v = Verdicts()
    for interp, res in results.items():
        if interp in host_labels:
            check_full(v, interp, res, workloads)
            check_baseline(v, interp, res, workloads, calib)
            check_sampled(v, interp, res, workloads)
        info_lines(v, interp, res, workloads)
    return v.ok, v.lines
