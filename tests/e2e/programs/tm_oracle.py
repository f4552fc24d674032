"""Imported first by every e2e program, under tmbpf and under the oracle alike,
so that both runs import the same modules. With TM_ORACLE_OUT set (the oracle
run, started with -X tracemalloc=25), an atexit hook dumps tracemalloc's
snapshot: atexit runs at the start of interpreter finalization, the same
moment tmbpf freezes its view."""
import atexit
import os
import pickle  # noqa: F401  (imported in both runs so both hold the same modules)
import tracemalloc

_out = os.environ.get("TM_ORACLE_OUT")


def _dump():
    tracemalloc.take_snapshot().dump(_out)


if _out:
    atexit.register(_dump)
