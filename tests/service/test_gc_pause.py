"""The garbage collector's pause is process-wide and counted: a warm-up in one worker thread and an
expected-starts refresh in another overlap, and the collector runs again only when both have ended."""

from __future__ import annotations

import gc
import threading

from hub_ext.service.gc_pause import paused_gc


def test_overlapping_pauses_in_two_threads_end_with_the_collector_on_whichever_ends_first():
    assert gc.isenabled()
    for first_to_end in ("warm-up", "refresh"):
        started = {name: threading.Event() for name in ("warm-up", "refresh")}
        end = {name: threading.Event() for name in ("warm-up", "refresh")}
        ended = {name: threading.Event() for name in ("warm-up", "refresh")}
        seen = {}

        def block(name):
            with paused_gc(freeze_after=(name == "warm-up")):
                started[name].set()
                end[name].wait(10)
            ended[name].set()

        threads = [threading.Thread(target=block, args=(name,)) for name in ("warm-up", "refresh")]
        for t in threads:
            t.start()
        for e in started.values():
            assert e.wait(10)
        assert not gc.isenabled()
        end[first_to_end].set()
        assert ended[first_to_end].wait(10)
        seen["one left"] = gc.isenabled()
        for e in end.values():
            e.set()
        for t in threads:
            t.join(10)
        seen["both ended"] = gc.isenabled()
        assert seen == {"one left": False, "both ended": True}, first_to_end


def test_what_a_warm_up_builds_is_frozen_when_it_ends_and_no_full_pass_walks_it():
    full_passes = []

    def count(phase, info):
        if phase == "start" and info["generation"] == 2:
            full_passes.append(len(gc.get_objects(generation=2)))

    class Built:
        pass

    gc.callbacks.append(count)
    try:
        frozen = gc.get_freeze_count()
        with paused_gc(freeze_after=True):
            with paused_gc(freeze_after=True):  # (a nested one leaves the freeze to the outer one)
                built = [Built() for _ in range(20_000)]
            assert not gc.isenabled() and gc.get_freeze_count() == frozen
        assert gc.isenabled() and gc.get_freeze_count() >= frozen + 20_000
        gc.collect()  # a full pass: the built objects are not among what it walks
        assert full_passes and not any(type(o) is Built for o in gc.get_objects())
        assert all(type(o) is Built for o in built)
        before = gc.get_freeze_count()
        del built  # frozen objects are still freed when their last reference goes
        assert gc.get_freeze_count() <= before - 20_000
    finally:
        gc.callbacks.remove(count)


def test_garbage_frozen_by_warm_ups_is_collected_every_few_freezes(monkeypatch):
    """Cyclic garbage alive when a warm-up ends is frozen with the rest; without a bound, a service that
    re-indexed again and again would keep every warm-up's share for ever."""
    import weakref

    from hub_ext.service import gc_pause

    class Cyclic:
        pass

    monkeypatch.setattr(gc_pause, "FULL_PASS_EVERY", 3, raising=False)
    monkeypatch.setattr(gc_pause, "_freezes", 0, raising=False)
    left = []
    for n in range(3):
        with paused_gc(freeze_after=True):
            garbage = Cyclic()
            garbage.me = garbage  # a cycle: only a collector pass frees it
            left.append(weakref.ref(garbage))
            del garbage
        gc.collect()  # an ordinary full pass: frozen objects are out of its reach
        alive = [ref() is not None for ref in left]
        if n < 2:
            assert all(alive), f"freeze {n + 1}: the frozen cycles are kept until the bound"
        else:
            assert not any(alive), "the third freeze runs a full pass first: every frozen cycle is freed"
