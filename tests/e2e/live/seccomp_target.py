"""A target whose seccomp filter kills the process on memfd_create (as a
hardened service's might): tmbpf must not inject its stub (the parasite's
memfd_create would kill it) and must fall back to entry probes. Prints
READY once filtered, then churns until argv[1] exists, then prints a digest
of its work."""
import ctypes
import os
import sys
import time
import zlib


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(SockFilter))]


def install():
    LD_W_ABS, JEQ_K, RET_K = 0x20, 0x15, 0x06
    AUDIT_ARCH_X86_64, NR_MEMFD_CREATE = 0xC000003E, 319
    KILL_PROCESS, ALLOW = 0x80000000, 0x7FFF0000
    prog = [
        (LD_W_ABS, 0, 0, 4),            # arch
        (JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        (RET_K, 0, 0, KILL_PROCESS),
        (LD_W_ABS, 0, 0, 0),            # nr
        (JEQ_K, 0, 1, NR_MEMFD_CREATE),
        (RET_K, 0, 0, KILL_PROCESS),
        (RET_K, 0, 0, ALLOW),
    ]
    arr = (SockFilter * len(prog))(*[SockFilter(*i) for i in prog])
    fprog = SockFprog(len(prog), arr)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, FILTER
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")


install()
print("READY", flush=True)
digest = 0
keep = []
while not os.path.exists(sys.argv[1]):
    for i in range(2000):
        keep.append(("item-%d" % i) * 3)  # GROWING LINE
    digest = zlib.crc32(keep[-1].encode(), digest)
    del keep[:1500]
    time.sleep(0.01)
print("done", len(keep) > 0)
