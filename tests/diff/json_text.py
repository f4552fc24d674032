"""Print the text a `tmbpf stats/compare --json` document carries, as the
text output would: each element's "text", then its "traceback_lines"."""
import json
import sys

with open(sys.argv[1], encoding="utf-8") as fp:
    doc = json.load(fp)
items = doc.get("statistics", doc.get("diffs"))
out = open(sys.stdout.fileno(), "w", encoding="utf-8", errors="surrogatepass", newline="\n")
for it in items:
    assert isinstance(it["size"], int) and isinstance(it["count"], int)
    assert all(set(f) == {"filename", "lineno"} for f in it["traceback"])
    out.write(it["text"] + "\n")
    for line in it.get("traceback_lines", []):
        out.write(line + "\n")
out.flush()
