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
            with paused_gc(collect_after=(name == "warm-up")):
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


def test_a_nested_pause_in_the_same_thread_leaves_the_collection_to_the_outer_one():
    collections = []

    def count(phase, info):
        if phase == "start" and info["generation"] == 2:
            collections.append(1)

    gc.callbacks.append(count)
    try:
        with paused_gc(collect_after=True):
            with paused_gc(collect_after=True):
                pass
            assert collections == [] and not gc.isenabled()
        assert len(collections) == 1 and gc.isenabled()
    finally:
        gc.callbacks.remove(count)
