import threading

import tm_oracle  # noqa: F401

RESULTS = {}


def work(tid):
    local = []
    for i in range(3000):
        local.append((tid, i, "t%d-%d" % (tid, i)))
    big = [bytearray(1000 + tid) for _ in range(100)]
    RESULTS[tid] = (local, big)


threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(sorted(RESULTS))
