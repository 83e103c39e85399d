"""The garbage collector kept out of the way of the service's big builds.

The service builds large sets of objects at a time: a warm-up reads every active row (60,000 at
50,000 pending) and indexes the core; an expected-starts refresh runs the whole queue forward. The
collector's passes over such sets cost hundreds of milliseconds each and hold the GIL: at 50,000
pending, full passes during a refresh in its worker thread took 300-730 ms and stalled the
scheduling cycles beside it (measured: slowest cycle 803 ms). None of those objects is garbage while
it is being built, so the collector is paused for the build (``paused_gc``), and what the service
keeps for long is moved out of its sight (``kept_out_of_gc``).

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
_frozen_here = False  # has a warm-up in this process frozen what it built (kept_out_of_gc)?
_building = threading.local()  # inside kept_out_of_gc, in this thread


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """The garbage collector paused while a block builds many objects that are not garbage.

    Each 700 allocations start a collection of the youngest generation and, as they survive, of the
    older ones: measured on a cold read of 60,000 rows, those passes were 40% of its time. Nothing
    cyclic is freed late but by the length of the block (it is collected on the next pass)."""
    global _pauses, _was_enabled
    with _lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()


@contextlib.contextmanager
def kept_out_of_gc() -> Iterator[None]:
    """Build what the service keeps for long (the kept rows, the indexed core) with the garbage
    collector paused, then move it out of the collector's sight (``gc.freeze``).

    Without this, the first collection after a warm-up walks every object it built: one full pass
    of 300-350 ms at 60,000 rows, either at the end of the warm-up (so before the first decision)
    or in whatever cycle comes next (190-300 ms instead of 50-85 ms). Frozen objects are still freed
    when their last reference goes; what freezing gives up is collecting reference cycles among
    them. So a service's first warm-up collects before it builds (the heap is small then: about
    60 ms), and what it freezes holds no garbage but what the build itself left; a later warm-up
    or re-index (which replaces the core an earlier one built, perhaps cyclic garbage now)
    unfreezes first and ends with a full collection. Nested in another in the same thread (the
    warm-up's index of the core), it leaves the ends to the outer one."""
    global _frozen_here
    if getattr(_building, "inside", False):
        yield
        return
    _building.inside = True
    try:
        again = _frozen_here
        if again:
            gc.unfreeze()
        else:
            gc.collect()
        with paused_gc():
            yield
        if again:
            gc.collect()
        gc.freeze()
        _frozen_here = True
    finally:
        _building.inside = False
