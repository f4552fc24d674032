"""BPF program statistics and memory of a held tmbpf run.

With kernel BPF run-time statistics on (BpfStats), a tmbpf variant runs a workload once more
with BENCH_HOLD: the workload stops just before its timed window and just after it, and at each
stop the driver reads run_cnt and run_time_ns of the programs the tmbpf process holds open
(found through /proc/PID/fdinfo, never by name: other tmbpf instances may be running). The
difference is what the window cost in the kernel: program runs (kernel entries that ran a
program) and BPF nanoseconds.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading

from runs import parse_bench, parse_tmbpf_stderr, tmbpf_counters

STATS_SYSCTL = "/proc/sys/kernel/bpf_stats_enabled"
NR_BPF = 321                # x86-64
BPF_ENABLE_STATS = 32
BPF_STATS_RUN_TIME = 0


def stats_sysctl_on():
    with open(STATS_SYSCTL) as f:
        return f.read().strip() != "0"


class BpfStats:
    """BPF run-time statistics on for the duration, previous state restored.

    Sets kernel.bpf_stats_enabled=1 if it was 0 (and writes 0 back afterwards), and also holds
    a BPF_ENABLE_STATS file descriptor, so that another process writing 0 to the sysctl
    meanwhile cannot switch the statistics off under us; the kernel drops that reference
    when the descriptor closes, even if this driver is killed."""

    def __enter__(self):
        import ctypes
        self.old = None
        self.fd = -1
        with open(STATS_SYSCTL) as f:
            old = f.read().strip()
        if old == "0":
            with open(STATS_SYSCTL, "w") as f:
                f.write("1")
            self.old = old
        libc = ctypes.CDLL(None, use_errno=True)
        attr = (ctypes.c_uint8 * 16)()      # union bpf_attr { .enable_stats.type = RUN_TIME }
        attr[0] = BPF_STATS_RUN_TIME
        self.fd = libc.syscall(NR_BPF, BPF_ENABLE_STATS, attr, 16)
        return self

    def __exit__(self, *exc):
        if self.fd >= 0:
            os.close(self.fd)
        if self.old is not None:
            with open(STATS_SYSCTL, "w") as f:
                f.write(self.old)
        return False


def bpftool_json(what):
    try:
        p = subprocess.run(["bpftool", what, "show", "-j"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return []
    if p.returncode != 0:
        return []
    try:
        return json.loads(p.stdout or "[]")
    except ValueError:
        return []


def owned_ids(pid):
    """(prog ids, map ids) of the BPF objects process pid holds open (its /proc fdinfo)."""
    progs, maps = set(), set()
    fd_dir = "/proc/%d/fdinfo" % pid
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return progs, maps
    for fd in fds:
        try:
            with open(os.path.join(fd_dir, fd)) as f:
                text = f.read()
        except OSError:
            continue
        m = re.search(r"^prog_id:\s*(\d+)", text, re.M)
        if m:
            progs.add(int(m.group(1)))
        m = re.search(r"^map_id:\s*(\d+)", text, re.M)
        if m:
            maps.add(int(m.group(1)))
    return progs, maps


def bpf_sample(pid):
    """tmbpf's programs and maps (bpftool records) and its RSS, read now."""
    prog_ids, map_ids = owned_ids(pid)
    progs = [p for p in bpftool_json("prog") if p.get("id") in prog_ids]
    maps = [m for m in bpftool_json("map") if m.get("id") in map_ids]
    rss = 0
    try:
        with open("/proc/%d/status" % pid) as f:
            m = re.search(r"^VmRSS:\s*(\d+) kB", f.read(), re.M)
            rss = int(m.group(1)) * 1024 if m else 0
    except OSError:
        pass
    return {"progs": progs, "maps": maps, "rss": rss}


def held_run(cmd, env, on_bench, timeout, folder):
    """Run cmd with BENCH_HOLD; at the k-th BENCH line call on_bench(k, fields, pid), then
    release hold k.  folder: (host path, the same as the interpreter sees it) for the hold
    files.  Returns (exit code, stderr text)."""
    hold_dir = tempfile.mkdtemp(prefix="hold.", dir=folder[0])
    hold_in = os.path.join(folder[1], os.path.basename(hold_dir), "release")
    release = os.path.join(hold_dir, "release")
    env = dict(env, BENCH_HOLD=hold_in)
    errf = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, env=env,
                            universal_newlines=True)
    watchdog = threading.Timer(timeout, proc.kill)
    watchdog.start()
    try:
        k = 0
        for line in proc.stdout:
            if line.startswith("BENCH "):
                k += 1
                on_bench(k, parse_bench(line), proc.pid)
                open("%s.%d" % (release, k), "w").close()
        proc.wait()
        errf.seek(0)
        return proc.returncode, errf.read()
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        errf.close()
        shutil.rmtree(hold_dir, ignore_errors=True)


def window_programs(start, end):
    """Per program (by id): runs and BPF ns between two samples, and the totals."""
    before = {p["id"]: p for p in start["progs"]}
    per = []
    for p in end["progs"]:
        b = before.get(p["id"], {})
        per.append({"name": p.get("name", "?"),
                    "run_cnt": p.get("run_cnt", 0) - b.get("run_cnt", 0),
                    "run_time_ns": p.get("run_time_ns", 0) - b.get("run_time_ns", 0),
                    "run_cnt_total": p.get("run_cnt", 0),
                    "run_time_ns_total": p.get("run_time_ns", 0)})
    return {"progs": per, "run_cnt": sum(p["run_cnt"] for p in per),
            "run_time_ns": sum(p["run_time_ns"] for p in per),
            "run_cnt_total": sum(p["run_cnt_total"] for p in per),
            "run_time_ns_total": sum(p["run_time_ns_total"] for p in per)}


def stats_run(cmd, env, timeout, folder):
    """A held `tmbpf run -v ...` of a workload: the window's program runs and BPF time, tmbpf's
    counters (whole process) and stderr statements. dict, or dict(error=...)."""
    samples = {}

    def sample(k, fields, pid):
        samples["start" if (fields or {}).get("phase") == "start" else "end"] = bpf_sample(pid)

    rc, err = held_run(cmd, env, sample, timeout, folder)
    if rc != 0 or "end" not in samples:
        return {"error": "tmbpf run exited %d%s" % (rc, "" if samples else ", no BENCH line")}
    if "start" not in samples:
        return {"error": "no BENCH phase=start line (benchlib.py too old?)"}
    if not samples["end"]["progs"]:
        return {"error": "no BPF programs found in the tmbpf process's file descriptors"}
    result = window_programs(samples["start"], samples["end"])
    result["tmbpf"] = parse_tmbpf_stderr(err)
    result["counters"] = tmbpf_counters(err)
    return result


def memory_run(cmd, env, timeout, folder):
    """Marginal tmbpf memory (BPF maps + RSS) per live block: cmd runs bench_retain.py."""
    samples = {}

    def sample(k, fields, pid):
        samples[k] = (bpf_sample(pid), int((fields or {}).get("blocks", 0)))

    rc, _ = held_run(cmd, env, sample, timeout, folder)
    if rc != 0 or len(samples) != 2:
        return {"error": "tmbpf run exited %d" % rc}
    (a, blocks_a), (b, blocks_b) = samples[1], samples[2]

    # live_blocks is preallocated (its memlock is fixed at creation): a kept block costs one
    # of its slots, memlock / max_entries; the other maps (stacks) grow with use.
    def split(maps):
        live = [m for m in maps if m.get("name") == "live_blocks"]
        rest = sum(m.get("bytes_memlock", 0) for m in maps if m.get("name") != "live_blocks")
        return live, rest
    _, rest_a = split(a["maps"])
    live_b, rest_b = split(b["maps"])
    dblocks = blocks_b - blocks_a
    if dblocks <= 0:
        return {"error": "no live blocks retained"}
    if not live_b or not live_b[0].get("max_entries"):
        return {"na": "tmbpf's live_blocks map not found"}
    reserved = live_b[0].get("bytes_memlock", 0)
    slot = reserved / float(live_b[0]["max_entries"])
    maps_bytes = slot + max(rest_b - rest_a, 0) / float(dblocks)
    rss = (b["rss"] - a["rss"]) / float(dblocks)
    return {"blocks": dblocks, "maps_bytes": maps_bytes, "rss_bytes": rss,
            "total_bytes": maps_bytes + rss, "maps_total": rest_b + reserved,
            "reserved": reserved, "capacity": live_b[0]["max_entries"]}
