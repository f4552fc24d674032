"""Busy multi-threaded target for the redirect stress test (tests/redirect).

usage: busy.py N [READY]   4 threads each allocate and free in a loop N times,
                           then the main thread prints a deterministic checksum.
                           READY (optional): file that gets the PID once the
                           threads run."""
import os
import sys
import threading


def work(seed, n, out):
    acc = 0
    keep = []
    for i in range(n):
        d = {"k": i, "s": str(i * seed), "l": [i] * (i % 7)}
        keep.append(d)
        if len(keep) > 200:
            keep = keep[100:]
        acc = (acc * 31 + len(d["s"]) + sum(d["l"])) % 1000000007
        b = bytearray(600 + i % 300)
        acc = (acc + len(b)) % 1000000007
    out[seed] = acc


def main():
    n = int(sys.argv[1])
    out = {}
    threads = [threading.Thread(target=work, args=(s, n, out)) for s in range(1, 5)]
    for t in threads:
        t.start()
    if len(sys.argv) > 2:
        with open(sys.argv[2] + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(sys.argv[2] + ".tmp", sys.argv[2])
    for t in threads:
        t.join()
    print(sorted(out.items()))


main()
