"""Python called back from a thread CPython did not create (a ctypes callback
on a C thread): every call creates a thread state and deletes it on return,
so one OS thread goes through many thread states. tmbpf keeps the last one it
found per thread (3.12+); a deleted one must not be taken for the current."""
import ctypes
import os
import shutil
import subprocess
import tempfile

import tm_oracle  # noqa: F401

# The harness builds the library once into a directory it created
# (TM_CTHREADS_LIB); run alone, the program builds its own copy in a fresh
# private directory. Never a fixed name in a shared /tmp: a file planted
# there by another user would be loaded, as root, by the test.
LIB = os.environ.get("TM_CTHREADS_LIB")
_own_dir = None
if not LIB:
    _own_dir = tempfile.mkdtemp(prefix="tmbpf-cthreads.")
    LIB = os.path.join(_own_dir, "cthreads_loop.so")
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cthreads_loop.c")
    subprocess.check_call(["cc", "-shared", "-fPIC", "-O2", "-pthread", "-o", LIB, src])

KEEP = []


def body(i):
    KEEP.append([(i, j) for j in range(30)])
    KEEP.append("c%d" % i * 3)


callback = ctypes.CFUNCTYPE(None, ctypes.c_int)(body)
if ctypes.CDLL(LIB).call_from_new_thread(callback, 2000) != 0:
    raise SystemExit("pthread_create failed")
print(len(KEEP))
if _own_dir:
    shutil.rmtree(_own_dir)
