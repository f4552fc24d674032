"""CPython's tracemalloc as the oracle of `tmbpf merge`: the Snapshot whose
traces are the union of several Snapshot.dump() files.

usage: python3 oracle.py stats KEY CUMULATIVE FILE...
       python3 oracle.py compare KEY CUMULATIVE [--traceback] OLD... -- NEW...
       python3 oracle.py union OUT FILE...
       python3 oracle.py workload OUT LIMIT N      (run by each CPython: dump a pickle)
       python3 oracle.py synth OUT SEED            (random traces, dumped)
stats prints str() of union.statistics(KEY, CUMULATIVE), one a line (what
`tmbpf stats --limit 0` prints); compare prints union(NEW).compare_to(union(OLD))
(with --traceback, each Traceback.format() under its line); union dumps the
union. The union is tracemalloc.Snapshot(traces of every file, the largest
traceback_limit), built from the raw trace tuples (Snapshot.traces._traces,
there in 3.8-3.13); 3.8's 3-tuples get total_nframe None, as tmbpf reads them,
because 3.9+'s _group_by unpacks four fields.
"""
import random
import sys
import tracemalloc


def union(files):
    traces, limit = [], 1
    for f in files:
        s = tracemalloc.Snapshot.load(f)
        limit = max(limit, s.traceback_limit)
        for t in s.traces._traces:
            traces.append(t if len(t) == 4 or sys.version_info < (3, 9) else t + (None,))
    return tracemalloc.Snapshot(traces, limit)


def out(lines):
    sys.stdout.reconfigure(errors="surrogatepass")  # as tmbpf prints lone surrogates
    for line in lines:
        print(line)


def workload(path, limit, n):
    """The same lines in every CPython (this file's), other amounts per part."""
    tracemalloc.start(limit)

    def leaf(k):
        return [bytearray(50 + 7 * k) for _ in range(k)]

    def mid(k):
        return leaf(k) + [bytes(300 * k)]

    def top(k):
        return [mid(k), leaf(k + 1), {"x": bytearray(1000 + k)}]

    keep = [top(n), top(n + 2), [str(i) * n for i in range(20 * n)]]
    snap = tracemalloc.take_snapshot()
    tracemalloc.stop()
    snap = snap.filter_traces([tracemalloc.Filter(True, __file__)])
    del keep
    snap.dump(path)


def synth(path, seed):
    rng = random.Random(seed)
    names = ["app.py", "lib/ü_mödule.py", "/srv/x/z.py", "<frozen importlib._bootstrap>",
             "caf\udce9.py", "日本語.py", __file__]
    pool = [(rng.choice(names), rng.choice([0, 1, 2, 7, 65535, 2**31 - 1])) for _ in range(25)]
    tbs = [[rng.choice(pool) for _ in range(rng.randint(1, 6))] for _ in range(30)]
    traces = []
    for _ in range(400):
        tb = tuple(rng.choice(tbs))
        size = rng.choice([0, 1, 1023, 1024, 10240, 2**31]) if rng.random() < 0.2 else rng.randint(1, 9000)
        traces.append((rng.choice([0, 0, 1, 7]), size, tb, rng.choice([len(tb), len(tb) + 3, None])))
    tracemalloc.Snapshot(traces, 6).dump(path)


def main():
    cmd = sys.argv[1]
    if cmd == "workload":
        workload(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "synth":
        synth(sys.argv[2], int(sys.argv[3]))
    elif cmd == "union":
        union(sys.argv[3:]).dump(sys.argv[2])
    elif cmd == "stats":
        out(str(s) for s in union(sys.argv[4:]).statistics(sys.argv[2], sys.argv[3] == "1"))
    elif cmd == "compare":
        args = sys.argv[4:]
        tb = args[0] == "--traceback"
        args = args[1:] if tb else args
        sep = args.index("--")
        diffs = union(args[sep + 1:]).compare_to(union(args[:sep]), sys.argv[2], sys.argv[3] == "1")
        lines = []
        for d in diffs:
            lines.append(str(d))
            if tb:
                lines.extend(d.traceback.format())
        out(lines)


main()
