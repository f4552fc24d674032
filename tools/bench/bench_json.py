"""json encode/decode round trips of a nested document (C accelerator on every version)."""
import json

import benchlib

DOC = {
    "users": [
        {"id": i, "name": "user%d" % i, "email": "user%d@example.com" % i,
         "score": i * 1.5, "active": i % 2 == 0, "tags": ["a", "b", "t%d" % (i % 7)],
         "address": {"street": "%d Main St" % i, "zip": "%05d" % i}}
        for i in range(200)
    ],
    "meta": {"version": 3, "count": 200},
}


def work(n):
    size = 0
    for _ in range(n):
        text = json.dumps(DOC)
        back = json.loads(text)
        size += len(text) + len(back["users"])
    return size


if __name__ == "__main__":
    benchlib.run("json", work, 700, 60)
