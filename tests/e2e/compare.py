"""Compare a tmbpf snapshot with CPython's own tracemalloc snapshot of the same
program: live bytes per line of the program's own files, cumulative (every
frame of a traceback counts, as Snapshot.statistics('lineno', cumulative=True)).

usage: compare.py TMBPF.pickle ORACLE.pickle PROGRAM_DIR
Agreement is sum(min(a, b)) / sum(max(a, b)) over lines. Prints one line:
agreement=<0..1> top5=<same|differ> tmbpf_bytes=.. oracle_bytes=..
and, on a mismatch, the lines that differ. Run it with CPython >= 3.9; pickles
written by 3.8 (3-tuples) are normalized to 4-tuples."""
import os
import pickle
import sys
import tracemalloc


def load(path):
    with open(path, "rb") as f:
        snap = pickle.load(f)
    traces = snap.traces._traces
    snap.traces._traces = [t if len(t) == 4 else tuple(t) + (None,) for t in traces]
    return snap


def per_line(snap, prog_dir):
    prog_dir = os.path.realpath(prog_dir)
    out = {}
    for stat in snap.statistics("lineno", cumulative=True):
        frame = stat.traceback[0]
        if not os.path.isfile(frame.filename):  # "<frozen ...>", "<unknown>"
            continue
        if os.path.dirname(os.path.realpath(frame.filename)) != prog_dir:
            continue
        if os.path.basename(frame.filename) == "tm_oracle.py":
            continue
        out[(os.path.basename(frame.filename), frame.lineno)] = stat.size
    return out


def main():
    tm_path, oracle_path, prog_dir = sys.argv[1:4]
    a = per_line(load(tm_path), prog_dir)
    b = per_line(load(oracle_path), prog_dir)
    keys = set(a) | set(b)
    common = sum(min(a.get(k, 0), b.get(k, 0)) for k in keys)
    union = sum(max(a.get(k, 0), b.get(k, 0)) for k in keys)
    agreement = common / union if union else 0.0
    # Top 5: the oracle's five largest lines, leaving out lines under 1% of
    # its bytes (a few hundred bytes of interpreter noise must not decide
    # them); tmbpf's as many largest lines must be the same lines.
    total_b = sum(b.values())
    top_b = [k for k in sorted(b, key=lambda k: (-b[k], k)) if b[k] >= 0.01 * total_b][:5]
    top_a = sorted(a, key=lambda k: (-a[k], k))[:len(top_b)]
    same_top = set(top_a) == set(top_b)
    print("agreement=%.4f top5=%s tmbpf_bytes=%d oracle_bytes=%d lines=%d" % (
        agreement, "same" if same_top else "differ", sum(a.values()), sum(b.values()), len(keys)))
    if agreement < 0.99 or not same_top:
        for k in sorted(keys, key=lambda k: -max(a.get(k, 0), b.get(k, 0)))[:15]:
            if a.get(k, 0) != b.get(k, 0):
                print("  %s:%d tmbpf=%d oracle=%d" % (k[0], k[1], a.get(k, 0), b.get(k, 0)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
