"""Target of the sampled-mode accuracy test (tests/e2e/sampling.sh): holds
about 170 MB live until it exits, on lines of one block size each, from
8 B to 1 MiB (sizes include the bytes object's header: bytes(n) takes
n + 33 bytes). The 8-byte blocks come from tm_alloc8 in the library named
by $TM_ALLOC8_LIB (live/alloc8.c, built by the test). Prints two lines."""
import ctypes
import os
import sys

N8 = 2_500_000
alloc8 = ctypes.PyDLL(os.environ["TM_ALLOC8_LIB"]).tm_alloc8
alloc8.restype = ctypes.c_long
alloc8.argtypes = [ctypes.c_long]

made = alloc8(N8)  # LINE 8 B (never freed: live until the end)
# freed again: nothing of it may be left (the frees of sampled blocks are seen)
churn = [bytes(1000) for _ in range(60_000)]; del churn  # LINE freed
# small blocks too (pymalloc's; where tmbpf leaves their frees alone, a sampled
# one is taken from the raw allocator, whose free it sees), and pymalloc's
# count of blocks in use comes back as it does untraced (a sampled block
# miscounted: thousands off at 16 KiB)
before = sys.getallocatedblocks()
small = [bytes(40) for _ in range(1_000_000)]; del small  # LINE freed small
print("blocks in use as before:", abs(sys.getallocatedblocks() - before) < 1000)
# the lists on lines of their own: each LINE holds blocks of one size only
b64, b512, b4k, b64k, b1m = [None] * 400_000, [None] * 50_000, [None] * 6_200, [None] * 400, [None] * 25
for i in range(len(b64)): b64[i] = bytes(31)  # LINE 64 B
for i in range(len(b512)): b512[i] = bytes(479)  # LINE 512 B
for i in range(len(b4k)): b4k[i] = bytes(4063)  # LINE 4 KiB
for i in range(len(b64k)): b64k[i] = bytes(65503)  # LINE 64 KiB
for i in range(len(b1m)): b1m[i] = bytes(1048543)  # LINE 1 MiB
print("holding", made + len(b64) + len(b512) + len(b4k) + len(b64k) + len(b1m), "blocks")
