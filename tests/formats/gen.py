"""Write tracemalloc pickles with Snapshot.dump() for the round-trip suite.

usage: python3 gen.py OUTDIR [SEED]

Files: real.pickle (tracemalloc.take_snapshot of a small workload), synth.pickle
(random traces: sizes across 64-bit range, several domains, recursion, non-ASCII,
surrogate-escaped and long file names, shared tracebacks), single.pickle (one
trace), empty.pickle (no traces), batch.pickle (2,500 traces: several APPENDS
batches and a memo beyond 256 entries).
"""
import os
import random
import sys
import tracemalloc

NEW = sys.version_info >= (3, 9)


def trace(domain, size, frames, total):
    tb = tuple(frames)
    return (domain, size, tb, total) if NEW else (domain, size, tb)


def synth(rng, n, limit):
    names = ["app.py", "lib/ü_mödule.py", "/srv/x/y/z.py", "<frozen importlib._bootstrap>",
             "weird name with spaces.py", "caf\udce9.py", "x" * 300 + ".py", "<unknown>",
             "pkg/__init__.pyc", "日本語.py"]
    pool = [(rng.choice(names), rng.choice([0, 1, 2, 255, 256, 65535, 65536, 2**31 - 1]))
            for _ in range(40)]
    tbs = []
    for _ in range(max(1, n // 3)):
        depth = rng.randint(1, limit)
        frames = [rng.choice(pool) for _ in range(depth)]
        if rng.random() < 0.2:
            frames = (frames * 3)[:limit]  # recursion: the same frames again
        tbs.append(frames)
    sizes = [0, 1, 7, 1023, 1024, 10 * 1024 - 1, 10 * 1024, 2**31 - 1, 2**31, 2**32,
             2**63 - 1, 2**63, 2**64 - 1]
    traces = []
    for _ in range(n):
        frames = rng.choice(tbs)
        total = rng.choice([len(frames), len(frames) + 5, None])
        size = rng.choice(sizes) if rng.random() < 0.3 else rng.randint(1, 5000)
        domain = rng.choice([0, 0, 0, 1, 7, 2**31, 2**32 - 1])
        # Python's tracemalloc makes new frame tuples per traceback: copy them.
        traces.append(trace(domain, size, [(f, l) for f, l in frames], total))
    return traces


def real():
    tracemalloc.start(10)

    def rec(n):
        return [bytearray(64 + i) for i in range(3)] if n == 0 else rec(n - 1)

    keep = [rec(4), {"é": bytearray(300)}, [str(i) * 10 for i in range(50)]]
    snap = tracemalloc.take_snapshot()
    tracemalloc.stop()
    del keep
    return snap


def main():
    out = sys.argv[1]
    rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    real().dump(os.path.join(out, "real.pickle"))
    tracemalloc.Snapshot(synth(rng, 300, 12), 12).dump(os.path.join(out, "synth.pickle"))
    tracemalloc.Snapshot(synth(rng, 1, 3), 3).dump(os.path.join(out, "single.pickle"))
    tracemalloc.Snapshot([], 1).dump(os.path.join(out, "empty.pickle"))
    tracemalloc.Snapshot(synth(rng, 2500, 25), 25).dump(os.path.join(out, "batch.pickle"))


main()
