"""Compare one domain of two tracemalloc snapshots exactly: the (filename,
line, size) multiset of its traces, most recent frame only.

usage: compare_domain.py TMBPF.pickle ORACLE.pickle DOMAIN
Prints one line: domain=D exact=<yes|no> tmbpf=<blocks>/<bytes> oracle=<blocks>/<bytes>
and, when they differ, the first differences."""
import collections
import pickle
import sys


def traces(path, domain):
    with open(path, "rb") as f:
        snap = pickle.load(f)
    out = collections.Counter()
    for t in snap.traces._traces:
        if t[0] == domain:
            frame = t[2][0] if t[2] else ("<unknown>", 0)
            out[(frame[0], frame[1], t[1])] += 1
    return out


def main():
    a, b, domain = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ta, tb = traces(a, domain), traces(b, domain)
    size = lambda c: sum(k[2] * n for k, n in c.items())
    print("domain=%d exact=%s tmbpf=%d/%d oracle=%d/%d" % (
        domain, "yes" if ta == tb else "no", sum(ta.values()), size(ta),
        sum(tb.values()), size(tb)))
    if ta != tb:
        for k in sorted(set(ta) | set(tb))[:10]:
            if ta[k] != tb[k]:
                print("  %s:%d size %d: tmbpf %d, oracle %d" % (k[0], k[1], k[2], ta[k], tb[k]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
