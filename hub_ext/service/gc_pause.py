"""The garbage collector kept out of the way of the service's big builds.

The service builds large sets of objects at a time: a warm-up reads every active row (60,000 at
50,000 pending) and indexes the core; an expected-starts refresh runs the whole queue forward. The
collector's passes over such sets cost hundreds of milliseconds each and hold the GIL: at 50,000
pending, full passes during a refresh in its worker thread took 300-730 ms and stalled the
scheduling cycles beside it (measured: slowest cycle 803 ms). None of those objects is garbage while
it is being built, so the collector is paused for the build (``paused_gc``); a warm-up ends by moving
what it built out of the collector's sight (``freeze_after``: ``gc.freeze``), so that no pass, in it or
in any cycle after it, walks them.

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
# Cyclic garbage alive when a block ends is frozen with everything else and never collected (a few
# hundred objects a warm-up, measured). Freezes are rare (a start, a failed cycle, a pool or
# configuration change), but a service that re-indexed thousands of times would keep thousands of such
# sets: every FULL_PASS_EVERY-th freeze first unfreezes and runs one full pass (a few hundred
# milliseconds at 50,000 pending, beside a re-index's second), so at most that many sets are kept.
FULL_PASS_EVERY = 20
_freezes = 0  # freezes done in this process


@contextlib.contextmanager
def paused_gc(freeze_after: bool = False) -> Iterator[None]:
    """The garbage collector paused while a block builds many objects that are not garbage.

    Each 700 allocations start a collection of the youngest generation and, as they survive, of the
    older ones: measured on a cold read of 60,000 rows, those passes were 40% of its time. Nothing
    cyclic is freed late but by the length of the block (it is collected on the next pass).

    ``freeze_after``: when the block ends (the outermost one in this thread), every object alive is
    moved to the collector's permanent generation (``gc.freeze``, constant time) before the collector
    runs again. Without it the first allocation after the block started a full pass over all the new
    objects (a warm-up's 480,000 at 50,000 pending: 200-300 ms), and so did an explicit ``gc.collect``
    (how this was done until issue 15's fourth round: a start then reached its first decision that much
    later). Frozen objects are still freed when their last reference goes (the kept rows and the core's
    index hold no reference cycles: a warm-up done again frees the last one's); only cyclic garbage that
    was alive when the block ended stays (a few hundred objects a warm-up, measured), and every later
    full pass is shorter by the frozen set. The freeze must come before the collector is switched on:
    frozen after, the full pass has already run (likely why a freeze measured only 90 ms the first
    time it was tried). Every ``FULL_PASS_EVERY``-th freeze is preceded by one full pass over everything
    (frozen sets included), so frozen garbage stays bounded."""
    global _pauses, _was_enabled, _freezes
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
            if freeze_after and _depth.n == 0:
                _freezes += 1
                if _freezes % FULL_PASS_EVERY == 0:
                    gc.unfreeze()
                    gc.collect()
                gc.freeze()
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()
