"""Python's cyclic garbage collector, spared the work of a sync or an aggregates' build.

Both allocate millions of short-lived objects that hold no cycles (rows, their
classifications, each account's entries until it is encoded). With Python's defaults
the youngest generation is collected every 700 new container objects, and each
collection walks the objects alive at the time, then the older generations in turn:
walking was a third of a CSV import's reading and checking of its rows, and 7 to 8% of
building every aggregate at a million interactions (8.85 s against 8.10 s with the
collector off and 8.21 s spared as below, one process).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: The youngest generation's collection threshold while the collector is spared.
YOUNG_OBJECTS = 100_000

_depth = 0


@contextmanager
def spared() -> Iterator[None]:
    """Leave the objects alive on entry (the loaded modules, the plugins, the store's
    engine) out of the collections while the block runs (``gc.freeze``), and collect the
    youngest generation only once :data:`YOUNG_OBJECTS` more container objects were made
    than freed, not 700: a batch of rows in flight is thousands of them, so at 700 a
    collection ran every few rows, each one walking (and promoting) the rows of the
    batches in flight, for no garbage. Measured on a CSV import of 300,000 interactions,
    its processes (forked with this setting) took 3 to 4% less CPU time, for about 2 MiB
    more at its peak. Nothing is kept alive longer: a cycle left as garbage goes at the
    next collection, and the objects rejoin the collector when the block ends. Nested
    blocks (a sync's refresh of the aggregates) leave the outermost one in charge."""
    global _depth
    if _depth:
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
        return
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(YOUNG_OBJECTS, *thresholds[1:])
    _depth = 1
    try:
        yield
    finally:
        _depth = 0
        gc.set_threshold(*thresholds)
        gc.unfreeze()
