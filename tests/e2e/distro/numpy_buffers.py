"""numpy reports its data buffers to tracemalloc with PyTraceMalloc_Track in
domain 389047 (not through PyMem): tmbpf must see exactly the same blocks."""
import tm_oracle  # noqa: F401

import numpy as np

KEEP = []


def make(n):
    KEEP.append(np.ones(n))             # one buffer of 8*n bytes
    KEEP.append(np.zeros((n, 3), dtype=np.int32))


for i in range(20):
    make(10000 + 1000 * i)
KEEP.append(np.arange(500000))
tmp = [np.empty(1000) for _ in range(100)]
del tmp                                 # tracked, then untracked
big = np.concatenate([k.ravel() for k in KEEP[:10]])
