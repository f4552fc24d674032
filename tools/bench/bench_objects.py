"""Object churn: short-lived tuples, lists, strings, floats and ints, allocated and freed at
once (the allocation-heavy loop of issue 4)."""
import benchlib


def work(n):
    keep = None
    for i in range(n):
        t = (i, i + 1, i + 2)
        s = str(i)
        lst = [t, s, float(i), i * 3 + 1000000]
        keep = (lst, s + "x")
    return keep


if __name__ == "__main__":
    benchlib.run("objects", work, 1150000, 100000)
