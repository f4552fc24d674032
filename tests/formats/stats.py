"""Print everything tracemalloc computes from a snapshot file, for comparison.

usage: python3 stats.py FILE
Loads FILE with tracemalloc.Snapshot.load() and prints traceback_limit, the
trace count and statistics('lineno' / 'filename' / 'traceback', plus the
cumulative variants) with each statistic's traceback frames.
"""
import sys
import tracemalloc

snap = tracemalloc.Snapshot.load(sys.argv[1])
out = sys.stdout
out.reconfigure(errors="surrogateescape")
print("traceback_limit", snap.traceback_limit)
print("traces", len(snap.traces))
for key, cumulative in (("lineno", False), ("filename", False), ("traceback", False),
                        ("lineno", True), ("filename", True)):
    print("#", key, cumulative)
    for stat in snap.statistics(key, cumulative):
        print(stat)
        print("   ", [(f.filename, f.lineno) for f in stat.traceback],
              getattr(stat.traceback, "total_nframe", None) if key == "traceback" else "")
