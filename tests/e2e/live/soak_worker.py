# Soak test worker (tests/e2e/soak.sh): python3 soak_worker.py SEED SECONDS END
# A deterministic computation allocates and frees and prints its result; then
# the worker churns (allocates and frees, no output) until SECONDS after its
# start and ends as END says: "normal" prints a second result and finalizes,
# "exit" prints it and calls os._exit(3) (no finalization), "kill" churns
# until it is killed (SIGKILL, by the soak).
# Its output depends on SEED and END only, never on timing.
import os
import random
import sys
import time

START = time.monotonic()

def compute(rng, rounds):
    """Build and drop lists, dicts, strings and bytes; return a checksum."""
    total = 0
    keep = []
    for r in range(rounds):
        n = rng.randrange(50, 400)
        items = [rng.randrange(1 << 30) for _ in range(n)]
        table = {("k%d" % i): str(v) * (1 + v % 3) for i, v in enumerate(items)}
        blob = b"".join(v.to_bytes(4, "little") for v in items[:64])
        total = (total * 31 + sum(items) + len(table) + len(blob)) % (1 << 61)
        keep.append(sorted(table.values())[: n // 10])
        if len(keep) > 20:
            del keep[rng.randrange(len(keep))]
    return total ^ sum(len(k) for k in keep)


def churn(rng, seconds):
    """Replace parts of a bounded live set until SECONDS after the start
    (forever if negative); a pause per batch keeps the CPU moderate."""
    live = [None] * 2000
    end = START + seconds
    while seconds < 0 or time.monotonic() < end:
        for _ in range(200):
            i = rng.randrange(len(live))
            kind = rng.randrange(4)
            if kind == 0:
                live[i] = list(range(rng.randrange(1, 64)))
            elif kind == 1:
                live[i] = {j: str(j) for j in range(rng.randrange(1, 16))}
            elif kind == 2:
                live[i] = "x" * rng.randrange(1, 2000)
            else:
                live[i] = bytearray(rng.randrange(1, 8192))
        time.sleep(0.05)


def main():
    seed, seconds, end = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    rng = random.Random(seed)
    print("seed %d end %s: first %d" % (seed, end, compute(rng, 200)), flush=True)
    if end == "kill":
        churn(random.Random(seed + 1), -1)
    churn(random.Random(seed + 1), seconds)
    print("seed %d end %s: second %d" % (seed, end, compute(rng, 100)), flush=True)
    if end == "exit":
        os._exit(3)


main()
