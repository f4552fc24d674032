"""Write a realistic large tracemalloc snapshot for tools/bench_stats.sh.

usage: python3 bench_gen.py OUT.pickle [NTRACES] [NFRAMES]

1,000,000 traces with 25-frame tracebacks by default, shaped like a real
service: 300 files, 20,000 distinct frames, 100,000 distinct tracebacks that
share their outer frames (2,000 request-handling prefixes) and are used with a
skewed (Pareto) frequency. Frame tuples are created per traceback, as
tracemalloc's _get_traces() does, so the pickle is what Snapshot.dump() writes
for a real process.
"""
import random
import sys
import tracemalloc

out = sys.argv[1]
ntraces = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
nframes = int(sys.argv[3]) if len(sys.argv) > 3 else 25
rng = random.Random(42)
files = ["/srv/app/pkg%d/module_%d.py" % (i % 20, i) for i in range(300)]
frames = [(rng.choice(files), rng.randint(1, 3000)) for _ in range(20_000)]
inner = min(10, nframes)
prefixes = [[rng.choice(frames) for _ in range(nframes - inner)] for _ in range(2_000)]
tracebacks = []
for _ in range(100_000):
    fr = [rng.choice(frames) for _ in range(inner)] + rng.choice(prefixes)
    tracebacks.append(tuple((f, l) for f, l in fr))  # most recent first
sizes = [16, 24, 32, 48, 56, 64, 72, 96, 128, 256, 512, 1024, 4096]
traces = []
ntb = len(tracebacks)
for _ in range(ntraces):
    tb = tracebacks[min(ntb - 1, int(rng.paretovariate(1.2)) - 1) if rng.random() < 0.5
                    else rng.randrange(ntb)]
    size = rng.choice(sizes) if rng.random() < 0.8 else rng.randint(1, 100_000)
    traces.append((0, size, tb, nframes + rng.randint(0, 15)))
tracemalloc.Snapshot(traces, nframes).dump(out)
