"""Threads: four threads allocating and freeing containers and strings concurrently (the
probes see allocations from several OS threads; each pairs entry and exit per thread)."""
import threading

import benchlib

THREADS = 4


def churn(args):
    n, out, slot = args
    total = 0
    for i in range(n):
        d = {"i": i, "s": str(i), "l": [i, i + 1]}
        total += len(d["s"]) + len(tuple(d["l"]))
    out[slot] = total


def work(n):
    out = [0] * THREADS
    threads = [threading.Thread(target=benchlib.descend, args=(churn, (n, out, k)))
               for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(out)


if __name__ == "__main__":
    benchlib.run("threads", work, 280000, 25000)
