"""Python called back from a thread CPython did not create (a ctypes callback
on a C thread): every call creates a thread state and deletes it on return,
so one OS thread goes through many thread states. tmbpf keeps the last one it
found per thread (3.12+); a deleted one must not be taken for the current."""
import ctypes
import os
import subprocess
import tempfile

import tm_oracle  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "cthreads_loop.c")
LIB = os.path.join(tempfile.gettempdir(), "tmbpf-cthreads-%d.so" % os.getuid())
if not os.path.exists(LIB) or os.path.getmtime(LIB) < os.path.getmtime(SRC):
    tmp = "%s.%d" % (LIB, os.getpid())
    subprocess.check_call(["cc", "-shared", "-fPIC", "-O2", "-pthread", "-o", tmp, SRC])
    os.replace(tmp, LIB)

KEEP = []


def body(i):
    KEEP.append([(i, j) for j in range(30)])
    KEEP.append("c%d" % i * 3)


callback = ctypes.CFUNCTYPE(None, ctypes.c_int)(body)
if ctypes.CDLL(LIB).call_from_new_thread(callback, 2000) != 0:
    raise SystemExit("pthread_create failed")
print(len(KEEP))
