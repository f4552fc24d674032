import tm_oracle  # noqa: F401

KEEP = []


def descend(depth, limit):
    if depth == limit:
        KEEP.append(bytearray(300 + limit))
        KEEP.append([depth] * 20)
        return
    descend(depth + 1, limit)


for limit in (5, 30, 40, 60):
    for _ in range(200):
        descend(0, limit)
print(len(KEEP))
