# tests/e2e/allocator_reset.sh's target: does what an embedder, or a window
# of CPython's own start-up, does to a traced process: it saves the raw
# allocator (PyMem_GetAllocator), and once tmbpf's stub has taken the
# pointers (a line on stdin says so) puts the saved copy back
# (PyMem_SetAllocator), past the stub, and waits up to 3 s for a tracer to
# take them again. Then it keeps KEEP blocks of 100000 bytes (line 42) and
# allocates and frees 1 GB more (line 44): pymalloc hands such blocks to the
# raw allocator, whose free is all sampled mode sees. Its output does not
# depend on tracing.
import ctypes
import sys
import time


class PyMemAllocatorEx(ctypes.Structure):
    _fields_ = [("ctx", ctypes.c_void_p), ("malloc", ctypes.c_void_p),
                ("calloc", ctypes.c_void_p), ("realloc", ctypes.c_void_p),
                ("free", ctypes.c_void_p)]


PYMEM_DOMAIN_RAW = 0
KEEP = 40


def main():
    api = ctypes.pythonapi
    saved, now = PyMemAllocatorEx(), PyMemAllocatorEx()
    api.PyMem_GetAllocator(PYMEM_DOMAIN_RAW, ctypes.byref(saved))
    print("saved", flush=True)
    sys.stdin.readline()
    api.PyMem_SetAllocator(PYMEM_DOMAIN_RAW, ctypes.byref(saved))
    print("put back", flush=True)
    # give a tracer the time to take the pointers again (untraced: 3 s)
    end = time.monotonic() + 3.0
    while time.monotonic() < end:
        api.PyMem_GetAllocator(PYMEM_DOMAIN_RAW, ctypes.byref(now))
        if now.free != saved.free:
            break
        time.sleep(0.01)
    kept = []
    for i in range(KEEP):
        kept.append(bytearray(100000))
    for i in range(200):
        churn = [bytearray(100000 + j) for j in range(50)]
        del churn
    print("kept %d" % len(kept), flush=True)
    sys.stdin.readline()


main()
