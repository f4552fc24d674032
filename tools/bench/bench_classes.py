"""Class instances: objects with __dict__, __slots__ objects, properties and method calls,
kept in a list for a while and released."""
import benchlib


class Point:
    def __init__(self, x, y):
        self.x = x
        self.y = y
        self.label = None

    def moved(self, dx):
        return Point(self.x + dx, self.y)


class Vec:
    __slots__ = ("x", "y", "z")

    def __init__(self, x, y, z):
        self.x = x
        self.y = y
        self.z = z

    @property
    def norm2(self):
        return self.x * self.x + self.y * self.y + self.z * self.z


class Node(Point):
    def __init__(self, x, y, parent):
        Point.__init__(self, x, y)
        self.parent = parent
        self.children = []


def work(n):
    acc = 0
    for r in range(n):
        root = Node(0, 0, None)
        pts = []
        for i in range(200):
            p = Point(i, r).moved(1)
            v = Vec(i, i + 1.5, r)
            acc += v.norm2 > 0
            child = Node(i, r, root)
            root.children.append(child)
            pts.append(p)
        acc += len(pts)
    return acc


if __name__ == "__main__":
    benchlib.run("classes", work, 1400, 100)
