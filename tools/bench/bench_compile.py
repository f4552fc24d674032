"""compile() and ast: parse, walk and compile a synthetic module of ~60 lines."""
import ast

import benchlib

SOURCE = "\n".join(
    ["import os", "CONST = {'a': 1, 'b': [1, 2, 3]}"]
    + ["def f%d(x, y=%d):\n    z = [i * x for i in range(y)]\n"
       "    if x > %d:\n        return {'k': z, 'n': len(z)}\n    return sum(z) + y" % (i, i, i)
       for i in range(12)]
    + ["class C%d:\n    def m(self, a):\n        return self.__class__.__name__ + str(a)" % i
       for i in range(4)])


def work(n):
    nodes = 0
    for _ in range(n):
        tree = ast.parse(SOURCE, "<bench>")
        nodes += sum(1 for _ in ast.walk(tree))
        compile(tree, "<bench>", "exec")
        compile(SOURCE, "<bench>", "exec")
    return nodes


if __name__ == "__main__":
    benchlib.run("compile", work, 170, 15)
