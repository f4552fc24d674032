"""Differential oracle for tmbpf's snapshot library: run by each CPython.

    python3.X gen.py OUTDIR SEED

Writes into OUTDIR (which becomes the current directory):
  *.pickle        snapshots built from raw trace tuples with
                  tracemalloc.Snapshot(traces, limit).dump()
  src/            source files for Traceback.format() (encodings, newlines)
  exp/*.txt       CPython's own output for each case
  cases.tsv       KIND NAME RC EXPECTED ARGS... END, fields separated by \x1f,
                  run by run.sh as `tmbpf ARGS...` from OUTDIR; KIND is text
                  (stdout byte for byte) or json (the "text" fields).

Every case is one statistics() / compare_to() / filter_traces()
combination; RC is the expected exit code (2 for the ValueError of
cumulative + traceback). Deterministic for a given SEED and version.
"""
import os
import random
import sys
import tokenize  # noqa: F401  (3.13's linecache imports it lazily; sys.path is empty then)
import tracemalloc

V = sys.version_info[:2]
OUT = os.path.abspath(sys.argv[1])
SEED = int(sys.argv[2])
os.makedirs(os.path.join(OUT, "exp"), exist_ok=True)
os.makedirs(os.path.join(OUT, "src"), exist_ok=True)
os.chdir(OUT)
SRC = os.path.join(OUT, "src")

# ---- file names ------------------------------------------------------------

NAMES = [
    "/srv/app/main.py", "app/models.py", "app/models.pyc", "app/views.py",
    "/usr/lib/python3/json/decoder.py", "a.py", "A.py", "a.PY", "b.pyc", "b.py",
    "ünïcödé/файл.py", "日本語.py", "emoji😀.py", "weird name with spaces.py",
    "<frozen importlib._bootstrap>", "<string>", "", "[brackets].py",
    "star*.py", "q?.py", "back\\slash.py", "dash-a-z.py", "caret^.py",
    "amp&tilde~pipe|.py", "new\nline.py", "bad\udcff.py", "lone\ud800.py",
    ".pyc", "x.pyc.py", "pyc", "[", "[!].py", "-", "z", "/abs/deep/" + "d/" * 12 + "leaf.py",
]
LINENOS = [0, 1, 2, 3, 7, 10, 42, 100, 999, 65535, 2 ** 31 - 1, 2 ** 32 - 1]
DOMAINS = [0, 0, 0, 0, 1, 1, 2, 7, 2 ** 32 - 1]


def boundary_sizes():
    """Integers around every _format_size() threshold of every unit."""
    out = {0, 1, 2, 3, 5, 99, 100, 101, 1023, 1024, 1025}
    for u in range(5):
        s = 1024 ** u
        for v in (0.04, 0.05, 0.06, 0.95, 1, 9.95, 10, 99.94, 99.95, 99.96, 100,
                  100.05, 102.35, 1023.5, 9999.5, 10239, 10239.5, 10240, 10240.5,
                  10241, 123456.7):
            for d in (-1, 0, 1):
                n = int(v * s) + d
                if n >= 0:
                    out.add(n)
    out.add(2 ** 53 + 1)
    out.add(2 ** 55 + 12345)
    return sorted(out)


SIZES = boundary_sizes()
# The same sizes by unit: a traceback draws its sizes from one unit, so that
# sums and averages land in every unit, not mostly in TiB.
BY_UNIT = [[s for s in SIZES if 1024 ** u <= max(s, 1) < 1024 ** (u + 1) or (u == 4 and s >= 1024 ** 5)]
           for u in range(5)]
TIE_SIZES = [8, 16, 16, 32, 48, 1024]


def make_traceback(rng, names, deep=6):
    depth = rng.randint(1, deep)
    frames = [(rng.choice(names), rng.choice(LINENOS)) for _ in range(depth)]
    r = rng.random()
    if r < 0.15:
        frames = frames + frames[:rng.randint(1, depth)]  # recursion
    elif r < 0.25:
        frames = [frames[0]] * rng.randint(2, 4) + frames[1:]  # same frame twice
    return tuple(frames)


def trace(domain, size, tb, total=None):
    if V < (3, 9):
        return (domain, size, tb)
    if total is None:
        total = len(tb)
    return (domain, size, tb, total)


def random_traces(rng, n, ntb, sizes, names=NAMES):
    tbs = [make_traceback(rng, names) for _ in range(ntb)]
    # Every name is the allocating frame of some traceback, so that every
    # filter has something to match.
    for i in range(min(ntb, len(names))):
        tbs[i] = ((names[i], rng.choice(LINENOS)),) + tbs[i][1:]
    n = max(n, ntb)
    order = list(range(ntb)) + [rng.randrange(ntb) for _ in range(n - ntb)]
    rng.shuffle(order)
    pools = [rng.choice(BY_UNIT) if sizes is SIZES else sizes for _ in range(ntb)]
    return [trace(rng.choice(DOMAINS), rng.choice(pools[k]), tbs[k], rng.choice([None, 30, 100]))
            for k in order]


def mutate(rng, traces):
    """A later snapshot of the same process: some blocks freed, some grown,
    some new."""
    out = []
    for t in traces:
        r = rng.random()
        if r < 0.2:
            continue
        if r < 0.4:
            t = (t[0], rng.choice(SIZES)) + t[2:]
        out.append(t)
    extra = random_traces(rng, len(traces) // 4 + 1, 8, SIZES)
    out.extend(extra)
    rng.shuffle(out)
    return out


def edge_traces():
    """Every boundary size alone on its own line, and as a 2-block average."""
    out = []
    for i, s in enumerate(SIZES):
        out.append(trace(0, s, (("edge.py", i + 1),)))
        out.append(trace(1, s, (("edge2.py", i + 1),)))
        out.append(trace(1, s + 1, (("edge2.py", i + 1),)))
    return out


SNAPSHOTS = {}


def dump(name, traces, limit):
    snap = tracemalloc.Snapshot(traces, limit)
    snap.dump(os.path.join(OUT, name))
    SNAPSHOTS[name] = snap


# ---- filters -----------------------------------------------------------------

def filter_sets():
    sets = [
        [],
        [("include", "*.py", None)],
        [("include", "app/*", None)],
        [("exclude", "<*>", None)],
        [("include", "*.pyc", None)],
        [("include", "a*.py", 3), ("include", "*.py", 7)],
        [("exclude", "*.py", 0)],
        [("include-any", "app/models.py", None)],
        [("exclude-any", "*ü*", None)],
        [("domain", 1)],
        [("exclude-domain", 0)],
        [("include", "*", None), ("exclude", "*[a-m].py", None)],
        [("include", "[!a-z]*", None)],
        [("include", "?.py", None), ("include", "*\\*", None)],
        [("exclude", "*[]]*", None), ("exclude", "*[*]*", None)],
        [("include", "[^x]*", None), ("exclude-domain", 2)],
        [("include", "*.py", None), ("include", "<*>", None),
         ("exclude-any", "*app*", None), ("domain", 0)],
        [("include", "*[&~|]*", None)],
        [("include-any", "*/d/d/*", 42), ("exclude", "", None)],
        [("include", "[", None), ("include", "*[!]*", None)],
        [("include", "*😀*", None), ("include", "bad?.py", None)],
    ]
    if V >= (3, 10):
        # 3.8/3.9 raise re.error on reversed ranges; 3.10+ drop them.
        sets += [
            [("include", "*[z-a]*", None)],
            [("include", "*[!z-a]*", None)],
            [("include", "[a-c-e]*", None), ("include", "*[--0]*", None)],
            [("include", "*[b-a-z]*", None), ("exclude", "*[x-]*", None)],
        ]
    return sets


def py_filters(fs):
    out = []
    for f in fs:
        if f[0] in ("domain", "exclude-domain"):
            out.append(tracemalloc.DomainFilter(f[0] == "domain", f[1]))
        else:
            out.append(tracemalloc.Filter(f[0].startswith("include"), f[1], lineno=f[2],
                                          all_frames=f[0].endswith("-any")))
    return out


def cli_filters(fs):
    args = []
    for f in fs:
        if f[0] in ("domain", "exclude-domain"):
            args += ["--" + f[0], str(f[1])]
        else:
            spec = f[1] if f[2] is None else "%s:%d" % (f[1], f[2])
            args += ["--" + f[0], spec]
    return args


# ---- cases -------------------------------------------------------------------

CASES = []
SEP = "\x1f"  # not whitespace: bash's read keeps empty fields (empty patterns)


def write_exp(name, lines):
    path = os.path.join("exp", name + ".txt")
    with open(path, "w", encoding="utf-8", errors="surrogatepass", newline="\n") as fp:
        for line in lines:
            fp.write(line + "\n")
    return path


def add_case(kind, name, rc, lines, args):
    exp = write_exp(name, lines)
    CASES.append(SEP.join([kind, name, str(rc), exp] + args + ["END"]))


def render(stats, limit, tb=None):
    lines = []
    for st in (stats[:limit] if limit else stats):
        lines.append(str(st))
        if tb is not None:
            saved, sys.path[:] = sys.path[:], []  # linecache: no module search
            try:
                lines.extend(st.traceback.format(*tb))
            finally:
                sys.path[:] = saved
    return lines


def tb_args(tb):
    if tb is None:
        return []
    args = ["--traceback"]
    if tb[0] is not None:
        args += ["--traceback-limit", str(tb[0])]
    if tb[1]:
        args.append("--most-recent-first")
    return args


def stats_case(name, snapfile, key, cum, fs, limit=0, tb=None, kind="text"):
    args = ["stats", snapfile, "--key", key] + (["--cumulative"] if cum else [])
    args += ["--limit", str(limit)] + cli_filters(fs) + tb_args(tb)
    if kind == "json":
        args.append("--json")
    snap = SNAPSHOTS[snapfile]
    try:
        stats = snap.filter_traces(py_filters(fs)).statistics(key, cum)
    except ValueError:
        add_case(kind, name, 2, [], args)
        return
    add_case(kind, name, 0, render(stats, limit, tb), args)


def compare_case(name, old, new, key, cum, fs, limit=0, tb=None, kind="text"):
    args = ["compare", old, new, "--key", key] + (["--cumulative"] if cum else [])
    args += ["--limit", str(limit)] + cli_filters(fs) + tb_args(tb)
    if kind == "json":
        args.append("--json")
    filters = py_filters(fs)
    try:
        o = SNAPSHOTS[old].filter_traces(filters)
        n = SNAPSHOTS[new].filter_traces(filters)
        stats = n.compare_to(o, key, cum)
    except ValueError:
        add_case(kind, name, 2, [], args)
        return
    add_case(kind, name, 0, render(stats, limit, tb), args)


# ---- source files for Traceback.format() ---------------------------------------

def write_src(name, data):
    path = os.path.join(SRC, name)
    with open(path, "wb") as fp:
        fp.write(data)
    return path


def source_files():
    """(filename as stored in the snapshot, number of lines) pairs."""
    body = ("import os\n"
            "    x = 'héllo wörld'   \n"
            "\t\tindented_with_tabs()\n"
            "\n"
            "   \n"
            "\x0cform_feed()\x0b\n"
            "\u3000ideographic = '\u3000'\u3000\n"
            "\xa0nbsp\xa0\n"
            "para\u2028graph\u2029\n"
            "last = 'ÿ€😀'\n")
    files = [
        (write_src("plain.py", body.encode()), 10),
        (write_src("bom.py", b"\xef\xbb\xbf" + body.encode()), 10),
        (write_src("bom_cookie.py", b"\xef\xbb\xbf# coding: utf-8\n" + body.encode()), 11),
        (write_src("latin1.py", b"# -*- coding: latin-1 -*-\ns = '\xe9t\xe9'\n  \xa0x\n"), 3),
        (write_src("cookie2.py", b"#!/usr/bin/env python\n# vim: set fileencoding=iso-8859-1 :\n"
                   b"v = '\xfc'\n"), 3),
        (write_src("cookie_late.py", b"x = 1\n# coding: latin-1\ny = '\xc3\xa9'\n"), 3),
        (write_src("cp1252.py", b"# coding: cp1252\neuro = '\x80'\n"), 2),
        (write_src("crlf.py", b"a = 1\r\n  b = 2  \r\n\r\nc = 3\r\n"), 4),
        (write_src("cr.py", b"a = 1\r  b = 2\r\rc = 3"), 4),
        (write_src("mixed.py", b"one\r\ntwo\rthree\nfour"), 4),
        (write_src("empty.py", b""), 1),
        (write_src("nonl.py", b"only line, no newline"), 1),
        (write_src(b"caf\xe9.py".decode("utf-8", "surrogateescape"), b"cafe = 'bytes name'\n"), 1),
        ("src/plain.py", 10),
        ("src", 1),
        (os.path.join(SRC, "missing.py"), 3),
        ("<string>", 2),
    ]
    if V >= (3, 10):
        # 3.8/3.9's linecache lets UnicodeDecodeError and SyntaxError escape.
        files += [
            (write_src("bad_utf8.py", b"ok = 1\nbad = '\xff'\n"), 2),
            (write_src("bad_cookie.py", b"# coding: no-such-codec\nx = 1\n"), 2),
            (write_src("bom_latin1.py", b"\xef\xbb\xbf# coding: latin-1\nx = 1\n"), 2),
            (write_src("surrogate.py", b"x = '\xed\xa0\x80'\n"), 1),
        ]
    return files


def traceback_traces(rng):
    files = source_files()
    out = []
    for i in range(40):
        depth = rng.randint(1, 5)
        frames = []
        for _ in range(depth):
            name, nlines = rng.choice(files)
            frames.append((name, rng.randint(0, nlines + 1)))
        out.append(trace(0, rng.choice(SIZES), tuple(frames)))
    return out


# ---- main ------------------------------------------------------------------------

def main():
    rng = random.Random(SEED * 1000 + V[0] * 100 + V[1])
    a = random_traces(rng, 150, 40, SIZES)
    dump("a.pickle", a, 10)
    dump("b.pickle", mutate(rng, a), 10)
    c = random_traces(rng, 300, 90, SIZES)
    dump("c.pickle", c, 25)
    dump("d.pickle", mutate(rng, c), 25)
    dump("ties.pickle", random_traces(rng, 200, 60, TIE_SIZES), 5)
    dump("edge.pickle", edge_traces(), 1)
    dump("empty.pickle", [], 1)
    dump("tb.pickle", traceback_traces(rng), 5)

    keys = ("lineno", "filename", "traceback")
    sets = filter_sets()
    for snap in ("a.pickle", "c.pickle", "ties.pickle", "edge.pickle", "empty.pickle"):
        for key in keys:
            for cum in (False, True):
                for i, fs in enumerate(sets):
                    if snap in ("edge.pickle", "empty.pickle") and i > 2:
                        continue
                    stats_case("stats-%s-%s-%s-f%d" % (snap[:-7], key, int(cum), i),
                               snap, key, cum, fs)
    for key in keys:
        for limit in (1, 3, 10):
            stats_case("stats-limit%d-%s" % (limit, key), "a.pickle", key, False, [], limit)
        stats_case("json-%s" % key, "a.pickle", key, False, sets[1], 0, kind="json")
    # Defaults: --key lineno, --limit 10.
    add_case("text", "stats-defaults", 0, render(SNAPSHOTS["c.pickle"].statistics("lineno"), 10),
             ["stats", "c.pickle"])
    add_case("text", "compare-defaults", 0,
             render(SNAPSHOTS["d.pickle"].compare_to(SNAPSHOTS["c.pickle"], "lineno"), 10),
             ["compare", "c.pickle", "d.pickle"])
    pairs = [("a.pickle", "b.pickle"), ("b.pickle", "a.pickle"), ("a.pickle", "ties.pickle"),
             ("empty.pickle", "edge.pickle"), ("edge.pickle", "empty.pickle"),
             ("a.pickle", "a.pickle"), ("c.pickle", "d.pickle")]
    for old, new in pairs:
        for key in keys:
            for cum in (False, True):
                for i, fs in enumerate(sets):
                    if (old, new) not in (("a.pickle", "b.pickle"), ("c.pickle", "d.pickle")) and i % 4:
                        continue
                    compare_case("compare-%s-%s-%s-%s-f%d" % (old[:-7], new[:-7], key, int(cum), i),
                                 old, new, key, cum, fs)
    tbs = [(None, False), (2, False), (-1, False), (0, False), (None, True), (3, True),
           (-2, True), (1, False)]
    for key in ("traceback", "lineno"):
        for i, tb in enumerate(tbs):
            stats_case("tb-%s-%d" % (key, i), "tb.pickle", key, False, [], 0, tb)
    stats_case("json-tb", "tb.pickle", "traceback", False, [], 0, tbs[0], kind="json")
    compare_case("tb-compare", "empty.pickle", "tb.pickle", "traceback", False, [], 0, tbs[4])
    for key in keys:
        compare_case("json-compare-%s" % key, "c.pickle", "d.pickle", key, key != "traceback",
                     sets[16], 0, kind="json")

    with open("cases.tsv", "w", encoding="utf-8", errors="surrogatepass", newline="\n") as fp:
        for c in CASES:
            fp.write(c + "\n")
    print("%s: %d cases" % (sys.version.split()[0], len(CASES)))


main()
