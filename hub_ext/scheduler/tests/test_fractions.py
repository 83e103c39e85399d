"""6: fractions pack onto partly used cards, never over 100% of a card's
compute or memory."""

from __future__ import annotations

import pytest

from .helpers import apply, check_invariants, pool, reason, running, schedule, session, snap, teams

T = teams(("vision", 4))


def frac(wid, f, gpu, mem=None, at=0.0):
    w = session(wid, "vision", f, at=at, gpu_memory_mib=mem)
    return running(w, gpu, fraction=f, memory=mem if mem is not None else int(f * 16384))


CASES = [
    # (case, running fractions, request (fraction, memory), expected card or None)
    ("packs onto the partly used card", [frac("r", 0.5, "a/0")], (0.25, None), "a/0"),
    ("tightest partly used card that fits", [frac("r0", 0.5, "a/0"), frac("r1", 0.7, "a/1")], (0.3, None), "a/1"),
    ("compute would pass 100%: a fresh card", [frac("r", 0.6, "a/0")], (0.6, None), "a/1"),
    ("memory would pass the card: a fresh card", [frac("r", 0.25, "a/0", mem=12000)], (0.25, 8000), "a/1"),
    ("exactly full is fine", [frac("r0", 0.5, "a/0"), frac("r1", 0.25, "a/0")], (0.25, None), "a/0"),
]


@pytest.mark.parametrize("case,run,want,card", CASES, ids=[c[0] for c in CASES])
def test_fractions_pack_without_overcommitting(case, run, want, card):
    f, mem = want
    s = snap(pool(("a", 2)), T, run, [session("new", "vision", f, at=10, gpu_memory_mib=mem)])
    d = schedule(s)
    assert [sh.gpu_uuid for sh in d.starts[0].allocation.shares] == [card]
    assert d.starts[0].allocation.shares[0].fraction == f
    check_invariants(apply(s, d))


def test_no_room_on_any_card_means_waiting_with_the_numbers():
    run = [frac("r0", 0.75, "a/0", mem=4000)]
    s = snap(pool(("a", 1)), T, run, [session("new", "vision", 0.5, at=10, gpu_memory_mib=2000)])
    d = schedule(s)
    assert d.starts == ()
    text = reason(d, "new")
    assert "needs 0.5 of a GPU with 2000 MiB" in text and "0.25 of a GPU" in text


def test_many_fractions_fill_cards_and_count_as_fractions_of_quota():
    queue = [session(f"s{i}", "vision", 0.25, at=i) for i in range(12)]
    s = snap(pool(("a", 4)), teams(("vision", 2)), (), queue)
    d = schedule(s)
    used = {sh.gpu_uuid for st in d.starts for sh in st.allocation.shares}
    assert len(d.starts) == 12 and len(used) == 3, "12 quarters fill 3 cards, the 4th stays whole"
    assert [st.over_quota for st in d.starts].count(False) == 8, "a quota of 2 GPUs covers 8 quarters"
    check_invariants(apply(s, d))
