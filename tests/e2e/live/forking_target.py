"""A pre-fork server in miniature: forks a child every 20 ms that allocates
and exits 0, until argv[1] exists; then prints how many children ran and how
many did not exit 0. A child forked while tmbpf's stub is armed must run
exactly as without it (6.18 kills a child that runs an optimized uprobe
call it inherited: the stub's state page is wiped on fork so the child
never reaches one)."""
import os
import sys
import time

ran = bad = 0
print("READY", flush=True)
while not os.path.exists(sys.argv[1]):
    pid = os.fork()
    if pid == 0:
        data = [("child-%d" % i) * 4 for i in range(20000)]
        blob = b"".join(s.encode() for s in data)
        os._exit(0 if len(blob) > 0 else 3)
    _, status = os.waitpid(pid, 0)
    ran += 1
    if status != 0:
        bad += 1
        print("child status", status, flush=True)
    time.sleep(0.02)
print("children ran:", ran > 0, "failed:", bad)
