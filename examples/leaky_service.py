"""A small "service" with a leak, for `make demo`: a request cache that never
evicts, plus per-request garbage that is freed at once."""
import json
import time

SESSIONS = {}


def handle_request(i):
    payload = json.dumps({"user": i % 500, "items": list(range(i % 30))})
    request = json.loads(payload)
    # The leak: every request's decoded body is kept forever.
    SESSIONS[i] = request
    return len(payload)


def render_page(i):
    return "<li>%d</li>" % i * 20  # garbage: freed right away


def main():
    total = 0
    for i in range(30000):
        total += handle_request(i)
        total += len(render_page(i))
    time.sleep(0.1)
    print("served 30000 requests, %d bytes" % total)


main()
