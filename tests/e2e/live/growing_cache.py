"""A long-running target for attach tests: a cache that grows on one line
while other lines churn. Prints READY once its loop runs; exits after
--seconds (default 30) or when killed."""
import sys
import time

CACHE = {}


def grow(i):
    CACHE[i] = "cached-value-%d" % i * 8  # GROWING LINE


def churn(i):
    return [i] * 50


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    end = time.time() + seconds
    i = 0
    print("READY", flush=True)
    while time.time() < end:
        grow(i)
        churn(i)
        i += 1
        time.sleep(0.0005)


main()
