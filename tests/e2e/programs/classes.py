import tm_oracle  # noqa: F401


class Plain:
    def __init__(self, i):
        self.a = i
        self.b = str(i)
        self.c = [i] * (i % 7)


class Slotted:
    __slots__ = ("a", "b", "c")

    def __init__(self, i):
        self.a = i
        self.b = str(i)
        self.c = (i,) * (i % 5)


def make_plain(n):
    return [Plain(i) for i in range(n)]


def make_slotted(n):
    return [Slotted(i) for i in range(n)]


PLAIN = make_plain(4000)
SLOTTED = make_slotted(6000)
print(sum(p.a for p in PLAIN), sum(s.a for s in SLOTTED))
