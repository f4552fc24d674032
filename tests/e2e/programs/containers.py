import tm_oracle  # noqa: F401


def build_lists():
    return [list(range(i % 50)) for i in range(3000)]


def build_dicts():
    return [{"k%d" % j: j for j in range(i % 20)} for i in range(2000)]


def build_strings():
    return ["item-%08d-%s" % (i, "x" * (i % 40)) for i in range(5000)]


def build_sets_tuples():
    sets = [set(range(i % 30)) for i in range(1000)]
    tuples = [tuple(range(i % 10)) for i in range(4000)]
    return sets, tuples


LISTS = build_lists()
DICTS = build_dicts()
STRINGS = build_strings()
SETS, TUPLES = build_sets_tuples()
NESTED = {i: [str(i), (i, i + 1), {"v": i}] for i in range(1500)}
print(len(LISTS), len(DICTS), len(STRINGS), len(SETS), len(TUPLES), len(NESTED))
