"""Keeping the garbage collector's full collections short in a serving process.

Each sampled request leaves span objects in the batch span processor's queue until the export
thread takes them; enough of them outlive two young collections to be promoted to the oldest
generation, and CPython then runs *full* collections, each walking every tracked object of the
process. Measured with uvicorn and wrk (bench/bench_e2e.py): a FastAPI app holds ~73,000 tracked
objects after startup, and the longest full collection of each 8-second run stopped the event
loop for 64 to 177 ms on the (shared, loaded) 2-core benchmark machine — the p99 stall; bare
FastAPI ran none under the same load. ``gc.freeze()`` moves the objects alive after startup
into the permanent generation, which collections skip: a full collection then walks only what
requests created since (2 to 3 ms measured).

It is done once per process, after the first request through the middleware has been answered
(the app has started by then), after one full ``gc.collect()`` so no startup garbage is frozen;
that one collection is the only pause it adds. Objects frozen are never collected, so startup
objects that become cyclic garbage later stay in memory (a bounded, one-time amount).
``ATOMS_OTEL_GC_FREEZE=false`` leaves the collector alone.
"""

from __future__ import annotations

import gc
import os
import threading

__all__ = ["freeze_once"]

_lock = threading.Lock()
_frozen_in: list[int] = []


def freeze_once() -> bool:
    """Collect, then freeze the surviving heap; once per process (a forked worker does its own).
    True when this call did it."""
    pid = os.getpid()
    if _frozen_in and _frozen_in[0] == pid:
        return False
    with _lock:
        if _frozen_in and _frozen_in[0] == pid:
            return False
        _frozen_in[:] = [pid]
    gc.collect()
    gc.freeze()
    return True
