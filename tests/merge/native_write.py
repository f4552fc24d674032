"""Write a tracemalloc pickle as a tmbpf native file (docs/formats.md), with
what only live captures have: function names, metadata, a sample interval,
thread ids and allocation times. An independent writer, so that the merge
suite gets native inputs that `tmbpf convert` cannot make.

usage: python3 native_write.py IN.pickle OUT.tmbpf [--names TAG] [--sample BYTES]
           [--host H] [--python V] [--pid N] [--snapshot-ns NS] [--drop NAME=N]
--names TAG gives every frame the function name TAG_LINENO (version 2 files);
--snapshot-ns also gives trace i the allocation time NS - (i + 1) seconds.
"""
import argparse
import struct
import tracemalloc
import zlib

MAGIC = b"TMBPF\x89\r\n"


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def zigzag(v):
    return (v << 1) if v >= 0 else ((-v) << 1) - 1


def field(tag, value):
    return varint(tag) + varint(len(value)) + value


def chunk(kind, payload):
    comp = zlib.compress(payload)
    head = kind + struct.pack("<III", len(payload), len(comp), zlib.crc32(comp))
    return head + struct.pack("<I", zlib.crc32(head)) + comp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("inp")
    ap.add_argument("out")
    ap.add_argument("--names")
    ap.add_argument("--sample", type=int, default=0)
    ap.add_argument("--host")
    ap.add_argument("--python")
    ap.add_argument("--pid", type=int)
    ap.add_argument("--snapshot-ns", type=int, default=0)
    ap.add_argument("--drop", action="append", default=[])
    a = ap.parse_args()

    snap = tracemalloc.Snapshot.load(a.inp)
    raw = list(snap.traces._traces)
    strs, str_ids, frames, frame_ids, tbs, tb_ids = [], {}, [], {}, [], {}

    def sid(s):
        if s not in str_ids:
            str_ids[s] = len(strs)
            strs.append(s)
        return str_ids[s]

    for t in raw:
        tb = t[2]
        if tb not in tb_ids:
            ids = []
            for fn, ln in tb:
                key = (fn, ln)
                if key not in frame_ids:
                    name = sid("%s_%d" % (a.names, ln)) + 1 if a.names else 0
                    frame_ids[key] = len(frames)
                    frames.append((sid(fn), ln, name))
                ids.append(frame_ids[key])
            tb_ids[tb] = len(tbs)
            tbs.append(ids)

    meta = b""
    if a.pid is not None:
        meta += field(1, varint(zigzag(a.pid)))
    if a.python:
        meta += field(3, a.python.encode())
    if a.host:
        meta += field(4, a.host.encode())
    if a.snapshot_ns:
        meta += field(7, varint(a.snapshot_ns))
    for d in a.drop:
        name, count = d.split("=")
        meta += field(10, varint(len(name)) + name.encode() + varint(int(count)))
    meta += field(11, varint(snap.traceback_limit))
    meta += field(12, varint(len(raw)) + varint(len(tbs)) + varint(len(frames)) + varint(len(strs)))
    if a.sample:
        meta += field(13, varint(a.sample))

    out = bytearray(MAGIC + struct.pack("<HH", 2 if a.names else 1, 0))
    out += struct.pack("<I", zlib.crc32(bytes(out)))
    out += chunk(b"META", meta)
    enc = [s.encode("utf-8", "surrogatepass") for s in strs]
    out += chunk(b"STRS", varint(len(enc)) + b"".join(varint(len(s)) + s for s in enc))
    out += chunk(b"FRMS", varint(len(frames)) + b"".join(
        varint(s) + varint(ln) + (varint(n) if a.names else b"") for s, ln, n in frames))
    out += chunk(b"TBKS", varint(len(tbs)) + b"".join(
        varint(len(ids)) + varint(0) + b"".join(varint(i) for i in ids) for ids in tbs))
    times, prev = [], 0
    for i in range(len(raw)):
        t = a.snapshot_ns - (i + 1) * 10**9 if a.snapshot_ns else 0
        times.append(varint(zigzag(t - prev)))
        prev = t
    cols = [varint(0) + b"".join(varint(t[0]) for t in raw),
            varint(0) + b"".join(varint(t[1]) for t in raw),
            b"".join(varint(tb_ids[t[2]]) for t in raw),
            varint(0) + b"".join(varint(0 if len(t) < 4 or t[3] is None else t[3] + 1) for t in raw),
            varint(0) + b"".join(varint(1000 + i % 3) for i in range(len(raw))),
            varint(0) + b"".join(times)]
    out += chunk(b"TRCS", varint(len(raw)) + b"".join(cols))
    out += chunk(b"END!", varint(len(raw)) + varint(len(tbs)) + varint(len(frames)) + varint(len(strs)))
    with open(a.out, "wb") as fp:
        fp.write(out)


main()
