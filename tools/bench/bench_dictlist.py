"""Dict and list building: comprehensions, appends that grow (realloc), nested containers,
built up to a few thousand entries and dropped."""
import benchlib


def build(m):
    d = {}
    rows = []
    for j in range(m):
        key = "k%d" % j
        d[key] = [j, j * 2, j * 3]
        rows.append({"id": j, "name": key, "tags": [key, key.upper()]})
    index = {r["name"]: r for r in rows}
    squares = [x * x for x in range(m)]
    return len(d) + len(index) + len(squares)


def work(n):
    total = 0
    for _ in range(n):
        total += build(500)
    return total


if __name__ == "__main__":
    benchlib.run("dictlist", work, 1200, 100)
