import tm_oracle  # noqa: F401

CACHE = {}


def lookup(key):
    try:
        return CACHE[key]
    except KeyError:
        value = CACHE[key] = ("value-%d" % key) * 4
        return value


def churn(n):
    total = 0
    for i in range(n):
        tmp = [i] * 10  # freed at once: must not show up
        total += len(lookup(i % 7000)) + len(tmp)
    return total


print(churn(20000))
