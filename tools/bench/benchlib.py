"""Shared harness for the tmbpf capture benchmark workloads (CPython 3.8-3.14).

Every workload script calls run(name, work, n, warmup_n).  run() does the warm-up,
then times only work(n) with time.perf_counter() and prints one machine-readable line:

    BENCH name=<workload> seconds=<s> python=<X.Y.Z> depth=<d> [allocs=<n> frees=<n> ...]

Interpreter and tracer start-up, imports and the warm-up are outside the timed window.

Environment knobs (all optional; the driver sets them):
  BENCH_SCALE=F   multiply the work and warm-up sizes (default 1.0: ~0.35 s untraced on
                  pyenv 3.12 on the bench VM, 0.15-0.25 s on Debian's LTO+PGO 3.11)
  BENCH_DEPTH=N   run the workload N Python frames deep (default 30), so a tracer asked for
                  25 frames really walks 25 frames, as it would inside a real application
  BENCH_COUNT=1   read the allocation counters of malloc_count.so (LD_PRELOADed with
                  PYTHONMALLOC=malloc) before and after the window; adds allocs= (malloc,
                  calloc and realloc calls in the window), frees= (free of a non-NULL pointer)
                  and allocs_total=/frees_total= (from process start to the end of the window)
  BENCH_HOLD=PATH also print `BENCH name=<workload> phase=start` just before the window and wait
                  until PATH.1 exists; after the final line wait until PATH.2 exists (each wait
                  at most 120 s), so the driver can read tracer state (BPF program statistics)
                  at both ends of the window while the tracer is still loaded
"""
import gc
import os
import sys
import time

DEFAULT_DEPTH = 30


def _scaled(n):
    scale = float(os.environ.get("BENCH_SCALE", "1"))
    return max(1, int(n * scale))


def _counters():
    """Return a function reading (allocs, frees) from malloc_count.so, or None."""
    if os.environ.get("BENCH_COUNT") != "1":
        return None
    import ctypes
    lib = ctypes.CDLL(None)
    try:
        cells = [ctypes.c_ulong.in_dll(lib, sym) for sym in
                 ("tmbench_mallocs", "tmbench_callocs", "tmbench_reallocs", "tmbench_frees")]
    except ValueError:
        sys.stderr.write("benchlib: BENCH_COUNT=1 but malloc_count.so is not preloaded\n")
        sys.exit(1)

    def read():
        vals = [c.value for c in cells]
        return vals[0] + vals[1] + vals[2], vals[3]
    return read


def _descend(depth, fn, arg):
    if depth <= 1:
        return fn(arg)
    return _descend(depth - 1, fn, arg)


def descend(fn, arg):
    """Call fn(arg) BENCH_DEPTH frames deep (for thread targets: threads start shallow)."""
    return _descend(int(os.environ.get("BENCH_DEPTH", str(DEFAULT_DEPTH))), fn, arg)


def hold(index=1):
    """With BENCH_HOLD set, wait until BENCH_HOLD.<index> exists (at most 120 s)."""
    path = os.environ.get("BENCH_HOLD")
    if not path:
        return
    path = "%s.%d" % (path, index)
    deadline = time.monotonic() + 120
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)


def run(name, work, n, warmup_n):
    """Warm up with work(warmup_n), then time work(n) at BENCH_DEPTH frames and print BENCH."""
    depth = int(os.environ.get("BENCH_DEPTH", str(DEFAULT_DEPTH)))
    n = _scaled(n)
    read = _counters()
    _descend(depth, work, _scaled(warmup_n))
    gc.collect()
    if os.environ.get("BENCH_HOLD"):
        sys.stdout.write("BENCH name=%s phase=start\n" % name)
        sys.stdout.flush()
        hold(1)
    before = read() if read else None
    t0 = time.perf_counter()
    _descend(depth, work, n)
    t1 = time.perf_counter()
    after = read() if read else None
    line = "BENCH name=%s seconds=%.6f python=%s depth=%d" % (
        name, t1 - t0, "%d.%d.%d" % sys.version_info[:3], depth)
    if before is not None:
        line += " allocs=%d frees=%d allocs_total=%d frees_total=%d" % (
            after[0] - before[0], after[1] - before[1], after[0], after[1])
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    hold(2)
