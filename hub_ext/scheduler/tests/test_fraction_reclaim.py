"""A quota means room on a card: work within its team's quota that asks for a
fraction gets room on one card, by preempting other teams' over-quota fractional
work, or by taking a card held for another team's reservation; and a borrower's
reservation yields to borrowers ahead of its team in the fair order."""

from __future__ import annotations

from dataclasses import replace

import pytest

from .helpers import job, pool, preempted_ids, running, schedule, snap, started_ids, teams

MIB = 16384


def frac(wid, team, f, card, at=0.0):
    return running(job(wid, team, f, at=at), card, fraction=f, memory=int(f * MIB))


ROOM = [
    # (case, quotas, running, who is preempted, does be1 start)
    ("over-quota fractions of another team make room on one card",
     [("be", 1), ("ls", 0)], [frac("ls1", "ls", 0.6, "a/0", 1), frac("ls2", "ls", 0.6, "a/1", 2)], ["ls2"], True),
    ("the owner's fractions within quota are never victims",
     [("be", 1), ("ls", 2)], [frac("ls1", "ls", 0.6, "a/0", 1), frac("ls2", "ls", 0.6, "a/1", 2)], [], False),
    ("one victim is enough: the card with most room after it goes",
     [("be", 1), ("ls", 0)], [frac("ls1", "ls", 0.6, "a/0", 1), frac("ls2", "ls", 0.3, "a/1", 2), frac("ls3", "ls", 0.3, "a/1", 3)],
     ["ls3"], True),
]


@pytest.mark.parametrize("case,quotas,run,victims,starts", ROOM, ids=[c[0] for c in ROOM])
def test_a_fraction_within_quota_gets_room_on_one_card(case, quotas, run, victims, starts):
    d = schedule(snap(pool(("a", 2)), teams(*quotas), run, [job("be1", "be", 0.5, at=100)]))
    assert preempted_ids(d) == victims
    assert ("be1" in started_ids(d)) == starts


def starving_gang(team, gpus=4):
    """``team`` has a gang waiting 2 h (starving: it holds the free cards of the node closest to fitting it)."""
    return job("gang", team, gpus, at=0.0, user="g")


LS_AHEAD = [running(job(f"ls{i}", "ls", 1), f"a/{i}") for i in range(4)] + [running(job("be0", "be", 1), "b/0")]
HOLDS = [
    # (case, quotas, running, ls's starving gang, asker, does the asker start on a held card)
    ("a borrower ahead in the fair order uses a card held for a gang that needs part of its node",
     [("ls", 1), ("be", 1)], LS_AHEAD + [running(job(f"ls{i}", "ls", 1), f"b/{i - 3}") for i in (4, 5)], 2,
     job("be1", "be", 1, at=7000, user="b"), True),
    ("a fraction of a borrower ahead uses a card held for a gang that needs a whole node",
     [("ls", 1), ("be", 1)], LS_AHEAD, 4, job("be1", "be", 0.5, at=7000, user="b"), True),
    ("a whole card borrowed ahead does not: the whole-node gang would wait for all its cards again",
     [("ls", 1), ("be", 1)], LS_AHEAD, 4, job("be1", "be", 1, at=7000, user="b"), False),
    ("a borrower behind the reserving team waits",
     [("ls", 1), ("be", 1)], [running(job("ls0", "ls", 1), "a/0")] + [running(job(f"be{i}", "be", 1), f"b/{i}") for i in range(4)], 4,
     job("be9", "be", 1, at=7000, user="b"), False),
]


@pytest.mark.parametrize("case,quotas,run,gang,asker,starts", HOLDS, ids=[c[0] for c in HOLDS])
def test_a_borrowers_reservation_yields_only_to_borrowers_ahead_of_it(case, quotas, run, gang, asker, starts):
    s = snap(pool(("a", 4), ("b", 4)), teams(*quotas), run, [starving_gang("ls", gang), asker], now=7200.0)
    d = schedule(s)
    assert "gang" not in started_ids(d)
    assert (asker.id in started_ids(d)) == starts


def test_a_fraction_within_quota_may_take_a_card_held_for_another_teams_reservation():
    # ls (quota 4) waits with a gang of 4 within its quota: a hard reservation holds node b's free cards.
    run = [running(job(f"x{i}", "x", 1), f"a/{i}") for i in range(4)] + [running(job("be0", "be", 1), "b/0")]
    s = snap(pool(("a", 4), ("b", 4)), teams(("ls", 4), ("be", 2), ("x", 4)), run,
             [starving_gang("ls"), job("be1", "be", 0.5, at=7000, user="b")], now=7200.0)
    d = schedule(s)
    assert started_ids(d) == ["be1"]
    assert "holds a reservation" in [p.reason for p in d.pending if p.workload_id == "gang"][0]


CARDS = [
    # (case, quotas, ls's running fractions as (id, fraction, card), who is preempted, does the whole-card job start)
    # Node a has 4 cards; be (quota 2) runs one whole card and asks for another, within its quota.
    ("fractions holding more cards than their team's quota free the emptiest card",
     [("be", 2), ("ls", 2)], [("ls1", 0.5, "a/0"), ("ls2", 0.3, "a/1"), ("ls3", 0.4, "a/2")], ["ls2"], True),
    ("part of a card beyond the quota counts as a card (2 and a third cards for a quota of 2)",
     [("be", 2), ("ls", 2), ("x", 0)], [("ls1", 0.5, "a/0"), ("ls2", 0.4, "a/1"), ("ls3", 0.3, "a/2"), ("x1", 0.6, "a/2")], ["ls2"], True),
    ("no more cards than the quota: nothing is preempted",
     [("be", 2), ("ls", 3)], [("ls1", 0.5, "a/0"), ("ls2", 0.3, "a/1"), ("ls3", 0.4, "a/2")], [], False),
    ("a card shared with another team is not freed for it",
     [("be", 2), ("ls", 1), ("x", 1)],
     [("ls1", 0.5, "a/0"), ("x1", 0.5, "a/0"), ("ls2", 0.4, "a/1"), ("x2", 0.1, "a/1"), ("ls3", 0.4, "a/2"), ("x3", 0.1, "a/2")], [], False),
]


@pytest.mark.parametrize("case,quotas,fracs,victims,starts", CARDS, ids=[c[0] for c in CARDS])
def test_a_quota_means_room_on_a_card_for_whole_card_work_too(case, quotas, fracs, victims, starts):
    run = [running(job("be0", "be", 1), "a/3")] + [frac(wid, "x" if wid.startswith("x") else "ls", f, card, i) for i, (wid, f, card) in enumerate(fracs)]
    d = schedule(snap(pool(("a", 4)), teams(*quotas), run, [job("be1", "be", 1, at=100)]))
    assert preempted_ids(d) == victims
    assert ("be1" in started_ids(d)) == starts
    if victims:
        assert "fractions were holding more cards than its quota of 2 GPUs" in d.preemptions[0].reason


def test_the_minimum_run_time_protects_fractions_on_cards_beyond_the_quota():
    t = teams(("be", 2), ("ls", 2))
    t["ls"] = replace(t["ls"], min_runtime_reclaim_s=600.0)
    run = [running(job("be0", "be", 1), "a/3")] + [frac(w, "ls", f, c, 950.0) for w, f, c in (("ls1", 0.5, "a/0"), ("ls2", 0.3, "a/1"), ("ls3", 0.4, "a/2"))]
    d = schedule(snap(pool(("a", 4)), t, run, [job("be1", "be", 1, at=100)]))
    assert d.preemptions == () and d.starts == ()
    assert "protected by its minimum run-time" in d.pending[0].reason


OPEN_CARD = [
    # (case, be's quota, be's pending fraction, GPUs of ls's job within its quota (0: none), who starts)
    ("a fraction does not open a card beyond its team's quota while another team waits within its quota",
     2, 0.8, 1, ["ls1"]),
    ("with no other team waiting within its quota, it borrows the card",
     2, 0.8, 0, ["be2"]),
    ("it borrows the card once the work within quota had its turn and could not use it",
     2, 0.8, 2, ["be2"]),
    ("within its quota in cards, it opens one",
     3, 0.8, 1, ["be2"]),
    ("on a card its team already holds part of, it needs no new card",
     2, 0.5, 1, ["be2", "ls1"]),
]


@pytest.mark.parametrize("case,be_quota,f,ls_waits,starts", OPEN_CARD, ids=[c[0] for c in OPEN_CARD])
def test_a_fraction_opening_a_card_beyond_its_quota_borrows_it(case, be_quota, f, ls_waits, starts):
    # be holds 2 cards with 0.6 GPUs: within its quota in GPUs, it comes first in the fair order
    # (ls uses more of its quota), but a third card goes to ls's job first; the card rule would take a card it opened beyond its quota in
    # cards straight back for ls's job (preemption.card_victims).
    run = [frac("be1", "be", 0.3, "a/0"), frac("be0", "be", 0.3, "a/1"), running(job("ls0", "ls", 1), "a/2")]
    pending = [job("be2", "be", f, at=100, user="b")] + ([job("ls1", "ls", ls_waits, at=100, user="l")] if ls_waits else [])
    d = schedule(snap(pool(("a", 4)), teams(("be", be_quota), ("ls", 3)), run, pending, now=200.0))
    assert sorted(started_ids(d)) == starts
    assert preempted_ids(d) == []


def test_a_fraction_of_a_borrower_ahead_takes_no_held_card_beyond_its_quota_while_work_within_quota_waits():
    # As "a fraction of a borrower ahead uses a card held for a gang that needs a whole node", with be's
    # fraction starving (so it goes before the other borrowers) and team x's job within its quota queued
    # behind x's larger borrowing job: x's job gets the held card, be's fraction waits.
    x_jobs = [job("x2", "x", 2, at=6900, user="x"), job("x1", "x", 1, at=7000, user="x")]
    s = snap(pool(("a", 4), ("b", 4)), teams(("ls", 1), ("be", 1), ("x", 1)), LS_AHEAD,
             [starving_gang("ls", 4), job("be1", "be", 0.5, at=1000, user="b")] + x_jobs, now=7200.0)
    d = schedule(s)
    assert started_ids(d) == ["x1"]
