"""Compare a sampled tmbpf snapshot with a full one of the same program,
both tracemalloc pickles: for every line holding at least 5 % of the full
snapshot's bytes (in either snapshot), the sampled estimate of its bytes and blocks must be
within 10 % of the full figure.

usage: sample_compare.py FULL.pickle SAMPLED.pickle
Prints one line per such line and a last line
"worst=<relative error> lines=<n> within=<yes|no>"."""
import sys
import tracemalloc


def per_line(path):
    snap = tracemalloc.Snapshot.load(path)
    return {(s.traceback[0].filename, s.traceback[0].lineno): (s.size, s.count)
            for s in snap.statistics("lineno")}


def main():
    full, sampled = per_line(sys.argv[1]), per_line(sys.argv[2])
    total = sum(size for size, _ in full.values())
    worst, n = 0.0, 0
    # the lines either snapshot puts at >= 5 %: a line the full one shows
    # (nearly) empty but the sampled one does not means frees were missed
    keys = {k for k, (size, _) in full.items() if size >= 0.05 * total}
    keys |= {k for k, (size, _) in sampled.items() if size >= 0.05 * total}
    for key in sorted(keys, key=lambda k: -full.get(k, (0, 0))[0]):
        size, count = full.get(key, (0, 0))
        size, count = max(size, 1), max(count, 1)
        n += 1
        s_size, s_count = sampled.get(key, (0, 0))
        e_size = abs(s_size - size) / size
        e_count = abs(s_count - count) / count
        worst = max(worst, e_size, e_count)
        print("%s:%d full %d B in %d blocks, sampled %d B (%+.1f%%) in %d blocks (%+.1f%%)" % (
            key[0].rsplit("/", 1)[-1], key[1], size, count, s_size, 100.0 * (s_size - size) / size,
            s_count, 100.0 * (s_count - count) / count))
    print("worst=%.4f lines=%d within=%s" % (worst, n, "yes" if n and worst <= 0.10 else "no"))


main()
