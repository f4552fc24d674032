"""Not a timed workload: the memory probe for tmbpf's cost per live block.

Prints a BENCH line, holds (BENCH_HOLD.1), then keeps BENCH_RETAIN (default 300,000) small
strings alive, prints a second BENCH line and holds again (BENCH_HOLD.2).  The driver samples
tmbpf's map memory and RSS at both holds; the difference divided by the difference in live
pymalloc blocks (sys.getallocatedblocks) is the marginal memory per live block."""
import os
import sys

import benchlib


def retain(n):
    return [str(i) * 2 for i in range(n)]


def main():
    n = int(os.environ.get("BENCH_RETAIN", "300000"))
    before = sys.getallocatedblocks()
    sys.stdout.write("BENCH name=retain phase=base blocks=%d\n" % before)
    sys.stdout.flush()
    benchlib.hold(1)
    keep = benchlib.descend(retain, n)
    after = sys.getallocatedblocks()
    sys.stdout.write("BENCH name=retain phase=kept blocks=%d retained=%d\n" % (after, len(keep)))
    sys.stdout.flush()
    benchlib.hold(2)


if __name__ == "__main__":
    main()
