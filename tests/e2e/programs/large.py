import tm_oracle  # noqa: F401


def big_buffers():
    return [bytearray(4096) for _ in range(500)]


def big_lists():
    return [[0] * 200 for _ in range(800)]


def grown():
    out = []
    for i in range(200):
        b = bytearray()
        for _ in range(20):
            b += b"x" * 100  # realloc growth past 512 bytes
        out.append(b)
    return out


BUFS = big_buffers()
LISTS = big_lists()
GROWN = grown()
print(len(BUFS), len(LISTS), len(GROWN))
