"""Target of the sampled-mode accuracy test (tests/e2e/sampling.sh): holds
about 170 MB live until it exits, on lines of one block size each, from
8 B to 1 MiB (sizes include the bytes object's header: bytes(n) takes
n + 33 bytes). Prints one line."""
import ctypes

N8 = 2_500_000
pymem_malloc = ctypes.pythonapi.PyMem_Malloc
pymem_malloc.restype = ctypes.c_void_p
pymem_malloc.argtypes = [ctypes.c_size_t]

for _ in range(N8):
    pymem_malloc(8)  # LINE 8 B (never freed: live until the end)
b64 = [bytes(31) for _ in range(400_000)]  # LINE 64 B
b512 = [bytes(479) for _ in range(50_000)]  # LINE 512 B
b4k = [bytes(4063) for _ in range(6_200)]  # LINE 4 KiB
b64k = [bytes(65503) for _ in range(400)]  # LINE 64 KiB
b1m = [bytes(1048543) for _ in range(25)]  # LINE 1 MiB
print("holding", N8 + len(b64) + len(b512) + len(b4k) + len(b64k) + len(b1m), "blocks")
