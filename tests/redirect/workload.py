"""Deterministic allocation workload for the coverage test (tests/redirect).

usage: workload.py count N          count with PyMem_SetAllocator hooks (ground truth)
       workload.py hook N READY GO1 HOOKED GO2
                                    write the PID to READY; when GO1 exists install the
                                    counting hooks (they wrap whatever the pointers hold),
                                    create HOOKED, wait for GO2, remove the hooks, run
       workload.py probe N READY GO CTL ACK
                                    write the PID to READY, wait for a line on GO,
                                    then bracket the workload with "enable"/"disable"
                                    on CTL (each acknowledged on ACK), for driver count
Prints one JSON line."""
import json
import os
import sys


def workload(n):
    keep = []
    acc = 0
    for i in range(n):
        d = {"i": i, "s": "x%d" % i}
        l = [i, str(i), (i, i + 1)]
        keep.append((d, l))
        if len(keep) > 1000:
            del keep[:500]
        b = bytes(1000 + i % 100)
        ba = bytearray(b"a" * (i % 600))
        s = "".join(["ab"] * (i % 50))
        acc += len(s) + len(ba) + len(b) + len(d) + len(l)
    return acc


def main():
    mode, n = sys.argv[1], int(sys.argv[2])
    if mode == "count":
        sys.path.insert(0, os.environ["COUNTALLOC_DIR"])
        import countalloc
        countalloc.start()
        acc = workload(n)
        countalloc.stop()
        top, every = countalloc.counts()
        print(json.dumps({"acc": acc, "top": top, "all": every}))
        return
    if mode == "hook":
        ready, go1, hooked, go2 = sys.argv[3:7]
        sys.path.insert(0, os.environ["COUNTALLOC_DIR"])
        import countalloc
        import time
        with open(ready, "w") as f:
            f.write("%d\n" % os.getpid())
        while not os.path.exists(go1):
            time.sleep(0.01)
        countalloc.start()
        open(hooked, "w").close()
        while not os.path.exists(go2):
            time.sleep(0.01)
        countalloc.stop()
        top, every = countalloc.counts()
        acc = workload(n)
        print(json.dumps({"acc": acc, "hooked_calls": sum(map(sum, top)) > 0}))
        return
    ready, go, ctl, ack = sys.argv[3:7]
    with open(ready, "w") as f:
        f.write("%d\n" % os.getpid())
    with open(go) as f:
        f.readline()
    cfd = os.open(ctl, os.O_WRONLY)
    afd = os.open(ack, os.O_RDONLY)
    os.write(cfd, b"enable\n")
    os.read(afd, 4)
    acc = workload(n)
    os.write(cfd, b"disable\n")
    os.read(afd, 4)
    print(json.dumps({"acc": acc}))


main()
