"""A Flask app for tests/e2e/gunicorn.sh: /leak keeps a 64 KiB bytes object
per request in a module-level list (the line marked LEAK, which the test
finds by that mark); /ok allocates the same and keeps nothing; /fixed is
deterministic, for comparing traced and untraced bodies. Each worker counts
its /leak requests as the size of TM_APP_COUNT_DIR/<pid>, one byte appended
per request after the append to the list (a file's size is read whole,
never half-written, while the workers run)."""
import json
import os

from flask import Flask

app = Flask(__name__)
kept = []
LEAK_BYTES = 64 * 1024
count_dir = os.environ.get("TM_APP_COUNT_DIR")
count_fd = {}


def note_leak():
    if not count_dir:
        return
    pid = os.getpid()
    if pid not in count_fd:
        count_fd[pid] = os.open(os.path.join(count_dir, str(pid)),
                                os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.write(count_fd[pid], b".")


@app.route("/leak")
def leak():
    kept.append(bytes(LEAK_BYTES))  # LEAK
    note_leak()
    return "kept %d\n" % len(kept)


@app.route("/ok")
def ok():
    scratch = bytes(LEAK_BYTES)
    return "ok %d\n" % len(scratch)


@app.route("/fixed")
def fixed():
    rows = [{"n": i, "square": i * i, "word": "w%03d" % i} for i in range(50)]
    return json.dumps(rows, sort_keys=True) + "\n"
