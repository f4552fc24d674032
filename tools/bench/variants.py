"""What one run of the capture benchmark executes: variants, interpreters, their commands.

A variant is one way of running a workload script (untraced, under tracemalloc, under a tmbpf
binary with given flags, under memray). An interpreter is a CPython on the host, or one inside a
Debian root started through `unshare --mount-proc=ROOT/proc chroot ROOT` (memray needs /proc;
the mount lives in a private mount namespace and disappears with the process). command() builds
the argv of one run; availability() says whether a variant works on an interpreter, and if not,
why, in the words of the tool that refused.
"""
import os
import re
import shutil
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CHECK_TIMEOUT_S = 120
PROBE_PROGRAM = "print('TMBPF_PROBE_OK')"


class Variant:
    """name: the column; kind: python | tracemalloc | tmbpf | baseline | memray; flags: what the
    kind's command gets; light: runs at --light-scale (a fast variant, timed against an untraced
    run at that scale), else at --scale; what: the command, for the markdown."""

    def __init__(self, name, kind, flags, light, what):
        self.name, self.kind, self.flags, self.light, self.what = name, kind, flags, light, what

    @property
    def sampled(self):
        return "--sample-bytes" in self.flags

    @property
    def is_tmbpf(self):
        return self.kind in ("tmbpf", "baseline")


MEMRAY_FLAGS = ["-m", "memray", "run", "--trace-python-allocators", "-q", "-f", "--no-compress"]

VARIANTS = [
    Variant("untraced", "python", [], False, "`python bench_W.py`"),
    Variant("tm1", "tracemalloc", ["-X", "tracemalloc=1"], False, "`python -X tracemalloc=1`"),
    Variant("tm25", "tracemalloc", ["-X", "tracemalloc=25"], False, "`python -X tracemalloc=25`"),
    Variant("tb1", "tmbpf", ["--frames", "1"], False, "`tmbpf run --frames 1`"),
    Variant("tb25", "tmbpf", ["--frames", "25"], False,
            "`tmbpf run --frames 25` (full mode, tmbpf's default probe mode)"),
    Variant("tb25e", "tmbpf", ["--probe-mode", "entry", "--frames", "25"], False,
            "`tmbpf run --probe-mode entry --frames 25` (full mode on entry probes)"),
    Variant("base25", "baseline", ["--frames", "25"], False,
            "`baseline/tmbpf run --frames 25` (the capture before issue 11, built from git)"),
    Variant("tb25s", "tmbpf", ["--sample-bytes", "512k", "--frames", "25"], True,
            "`tmbpf run --sample-bytes 512k --frames 25` (sampled mode)"),
    Variant("memray", "memray", MEMRAY_FLAGS, True,
            "`python -m memray run --trace-python-allocators -q -f --no-compress -o FILE` "
            "(memray records every allocation with its whole Python stack)"),
]
BY_NAME = {v.name: v for v in VARIANTS}
NAMES = [v.name for v in VARIANTS]
DEFAULT_NAMES = [n for n in NAMES if n != "tb1"]


def which(prog):
    return shutil.which(prog, path=SYSTEM_PATH)


class Interp:
    """A CPython to benchmark. label: e.g. pyenv-3.12.1; python: its path as it sees itself;
    root: None on the host, else the directory it is chrooted into. stage() makes a private
    folder the interpreter can see (workload scripts, the allocation counter, memray's files);
    cleanup() removes it."""

    def __init__(self, label, python, root=None, kind=None):
        self.label, self.python, self.root, self.kind = label, python, root, kind
        self.dir_host = self.dir_in = None

    def stage(self, counter_so):
        base = os.path.join(self.root, "tmp") if self.root else None
        self.dir_host = tempfile.mkdtemp(prefix="tmbench.", dir=base)
        self.dir_in = ("/" + os.path.relpath(self.dir_host, self.root)) if self.root \
            else self.dir_host
        if self.root:
            for name in os.listdir(HERE):
                if name.endswith(".py"):
                    shutil.copy2(os.path.join(HERE, name), self.dir_host)
        self.counter_in = None
        if counter_so:
            shutil.copy2(counter_so, os.path.join(self.dir_host, "malloc_count.so"))
            self.counter_in = os.path.join(self.dir_in, "malloc_count.so")

    def cleanup(self):
        if self.dir_host:
            shutil.rmtree(self.dir_host, ignore_errors=True)
            self.dir_host = None

    def script(self, workload):
        """The workload script's path as the interpreter sees it."""
        folder = self.dir_in if self.root else HERE
        return os.path.join(folder, "bench_%s.py" % workload)

    def argv(self, extra_env=None):
        """The argv that starts this interpreter; extra_env is set for the interpreter alone
        (through env(1) after chroot, so that unshare and chroot do not preload a counter)."""
        envs = ["/usr/bin/env"] + ["%s=%s" % kv for kv in sorted(extra_env.items())] \
            if extra_env else []
        if not self.root:
            return envs + [self.python]
        return [which("unshare") or "unshare", "--mount-proc=%s" % os.path.join(self.root, "proc"),
                which("chroot") or "chroot", self.root] + envs + [self.python]


def command(variant, interp, script, binaries, out_file=None):
    """argv of one run. binaries: {'tmbpf': path, 'baseline': path}; out_file: memray's output
    (a path the interpreter sees)."""
    py = interp.argv()
    if variant.kind == "python":
        return py + [script]
    if variant.kind == "tracemalloc":
        return py + variant.flags + [script]
    if variant.kind == "memray":
        return py + variant.flags + ["-o", out_file or "/dev/null", script]
    return [binaries[variant.kind], "run"] + variant.flags + ["--"] + py + [script]


def refusal(text, fallback):
    """What a tool said when it refused: its stderr lines (at most 3, counters and drop reports
    left out) joined by ' | '."""
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip() and not re.match(r"tmbpf: (drops:|counter )", ln.strip())]
    if len(lines) > 3:
        lines = lines[:2] + ["...", lines[-1]]
    return " | ".join(lines) if lines else fallback


def notable_lines(text):
    """tmbpf's statements on stderr worth showing next to its figures (probe mode, fallbacks,
    redirects, coverage), without counters and drop reports (reported on their own)."""
    keep = []
    for ln in text.splitlines():
        ln = ln.strip()
        if not ln.startswith("tmbpf") or re.match(r"tmbpf: (drops:|counter )", ln):
            continue
        ln = re.sub(r"\bPID \d+", "PID N", ln)
        if ln not in keep:
            keep.append(ln)
    return keep


class Availability:
    """Caches which variant works on which interpreter: {(variant, interp label): (ok, reason,
    notes)}. A tmbpf binary that rejects a variant's flags (usage error, exit 2) does so on
    every interpreter: asked once."""

    def __init__(self, binaries, binary_reasons):
        self.binaries = binaries
        self.binary_reasons = binary_reasons    # {'baseline': 'why it is missing'} etc.
        self.cache = {}
        self.usage = {}

    def check(self, variant, interp):
        key = (variant.name, interp.label)
        if key not in self.cache:
            self.cache[key] = self._check(variant, interp)
        return self.cache[key]

    def _check(self, variant, interp):
        if variant.kind in ("python", "tracemalloc"):
            return True, "", []
        if variant.kind == "memray":
            return self._check_memray(interp)
        binary = self.binaries.get(variant.kind)
        if not binary:
            return False, self.binary_reasons.get(variant.kind, "not built"), []
        if os.geteuid() != 0:
            return False, "needs root", []
        flags_key = (variant.kind, tuple(variant.flags))
        if flags_key in self.usage:
            return False, self.usage[flags_key], []
        cmd = [binary, "run"] + variant.flags + ["--"] + interp.argv() + ["-c", PROBE_PROGRAM]
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=True, timeout=CHECK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return False, "tmbpf run timed out on a trivial program", []
        if p.returncode == 0 and "TMBPF_PROBE_OK" in p.stdout:
            return True, "", notable_lines(p.stderr)
        reason = refusal(p.stderr, "tmbpf run exited %d" % p.returncode)
        if p.returncode == 2:
            self.usage[flags_key] = reason
        return False, reason, []

    def _check_memray(self, interp):
        try:
            p = subprocess.run(interp.argv() + ["-c", "import memray; print(memray.__version__)"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=True, timeout=CHECK_TIMEOUT_S)
        except (OSError, subprocess.SubprocessError) as e:
            return False, str(e), []
        if p.returncode != 0:
            lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
            return False, (lines[-1].strip() if lines else "exit %d" % p.returncode), []
        return True, "", ["memray %s" % p.stdout.strip()]
