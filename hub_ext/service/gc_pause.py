"""The garbage collector kept out of the way of the service's big builds.

The service builds large sets of objects at a time: a warm-up reads every active row (60,000 at
50,000 pending) and indexes the core; an expected-starts refresh runs the whole queue forward. The
collector's passes over such sets cost hundreds of milliseconds each and hold the GIL: at 50,000
pending, full passes during a refresh in its worker thread took 300-730 ms and stalled the
scheduling cycles beside it (measured: slowest cycle 803 ms). None of those objects is garbage while
it is being built, so the collector is paused for the build (``paused_gc``); a warm-up ends with
one full pass (``collect_after``), outside any cycle, so that no cycle takes it.

Pausing is process-wide (``gc.disable``) and threads overlap (a warm-up in one worker thread, a
refresh in another), so pauses are counted: the collector runs again when the last one ends."""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_pauses = 0  # paused_gc blocks open now, in any thread
_was_enabled = True  # the collector's state before the first of them
_depth = threading.local()  # paused_gc blocks open in this thread


@contextlib.contextmanager
def paused_gc(collect_after: bool = False) -> Iterator[None]:
    """The garbage collector paused while a block builds many objects that are not garbage.

    Each 700 allocations start a collection of the youngest generation and, as they survive, of the
    older ones: measured on a cold read of 60,000 rows, those passes were 40% of its time. Nothing
    cyclic is freed late but by the length of the block (it is collected on the next pass).

    ``collect_after``: one full collection when the block ends (the outermost one in this thread),
    where the caller can afford it (a warm-up, outside any cycle): otherwise the first collection
    after it walks all the new objects, in whatever cycle comes next (measured: a first cycle of
    190-300 ms instead of 50-85 ms). ``gc.freeze`` instead of that pass was measured too: about 90 ms
    sooner to a first decision at 50,000 pending, and slower warm-ups after it (the frozen set is
    walked whole again on the next), so it is not used."""
    global _pauses, _was_enabled
    with _lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    _depth.n = getattr(_depth, "n", 0) + 1
    try:
        yield
    finally:
        _depth.n -= 1
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()
        if collect_after and _depth.n == 0:
            gc.collect()
