"""Busy multi-threaded target for attach/detach cycles: 4 threads allocate
and free in a loop until STOPFILE exists. The printed checksums cover each
thread's first K rounds only, so the output is the same however long the
target ran: an untraced run with STOPFILE present prints the same line.

usage: busy_threads.py K STOPFILE [READYFILE]"""
import os
import sys
import threading
import time


def work(seed, k, out, stop):
    acc = 0
    keep = []
    i = 0
    while True:
        d = {"k": i, "s": str(i * seed), "l": [i] * (i % 7)}
        keep.append(d)
        if len(keep) > 200:
            keep = keep[100:]
        acc = (acc * 31 + len(d["s"]) + sum(d["l"])) % 1000000007
        b = bytearray(600 + i % 300)
        acc = (acc + len(b)) % 1000000007
        i += 1
        if i == k:
            out[seed] = acc
        if i >= k and stop.is_set():
            break


def main():
    k, stopfile = int(sys.argv[1]), sys.argv[2]
    out, stop = {}, threading.Event()
    threads = [threading.Thread(target=work, args=(s, k, out, stop)) for s in range(1, 5)]
    for t in threads:
        t.start()
    if len(sys.argv) > 3:
        with open(sys.argv[3] + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(sys.argv[3] + ".tmp", sys.argv[3])
    while not os.path.exists(stopfile):
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join()
    print(sorted(out.items()))


main()
