"""Estimates given what a workload has already run (``Estimator(given_run=..., beyond=...)``):
from the past runs longer than what it has run; past every one of them, or past its estimate,
what it has run and a share of its overrun more. Off by default: the same estimate as before."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hub_ext.scheduler import las_estimates
from hub_ext.scheduler.estimates import MIN_REMAINING_S, Estimator, PastRun, gittins_left

from .helpers import job

H = 3600.0
# bert's last nine two-GPU jobs ran 1, 2, ..., 9 h: the median is 5 h.
HISTORY = [PastRun("bert", "t", "job", 2, h * H, ended_at=float(h)) for h in range(1, 10)]


def bert(ran_h: float, **kw):
    """A two-GPU bert job that has run ``ran_h`` hours at its asked size (attained GPU-s / asked GPUs)."""
    return replace(job("w", "t", 2, user="bert", **kw), attained_gpu_s=ran_h * H * 2)


CASES = [
    # (case, Estimator options, hours it has run, estimate expected (h), basis words)
    ("off: the median, whatever it has run", {}, 4.5, 5, "median of bert's last 9 two-GPU jobs"),
    ("off: an overrun estimate stands (plain least attained service ranks it)", {}, 6, 5, "median of bert's last 9"),
    ("given: new work is estimated as without it", {"given_run": "quantile"}, 0, 5, "median of bert's last 9 two-GPU jobs"),
    ("given: the median of the runs longer than what it has run", {"given_run": "quantile"}, 4.5, 7,
     "median of the 5 of bert's last 9 two-GPU jobs that ran longer than the 4.5 h it has run"),
    ("given: past the median, still from the longer runs", {"given_run": "quantile"}, 6, 8, "the 3 of bert's last 9"),
    ("given: a run exactly as long does not count as longer", {"given_run": "quantile"}, 8, 9, "the 1 of bert's last 9"),
    ("given: another quantile of the longer runs", {"given_run": "quantile", "given_q": 0.25}, 4.5, 6, "25% quantile of the 5"),
    ("given: their mean", {"given_run": "mean"}, 4.5, 7, "mean of the 5"),
    ("given: their mean, skewed", {"given_run": "mean"}, 6.5, 8, "mean of the 3"),
    ("given: the Gittins index (6.5 h run, then 0.5 h to the next end over its 1-in-3 chance)", {"given_run": "gittins"}, 6.5, 8.0, "Gittins index of the 3"),
    ("given: past every run, the estimate stands (beyond las)", {"given_run": "quantile"}, 10, 5, "median of bert's last 9 two-GPU jobs"),
    ("given: past every run, overrun rule (a quarter of 4 h past the longest)", {"given_run": "quantile", "beyond": "overrun"}, 13, 14,
     "the 13 h it has run and 60 min more: it has run longer than each of bert's last 9 two-GPU jobs"),
    ("given: just past every run, at least MIN_REMAINING_S more", {"given_run": "quantile", "beyond": "overrun"}, 9.1, 9.1 + MIN_REMAINING_S / H,
     "5 min more"),
    ("overrun rule only: below its estimate, the estimate", {"beyond": "overrun"}, 4.5, 5, "median of bert's last 9 two-GPU jobs"),
    ("overrun rule only: past its estimate, a quarter of its overrun more", {"beyond": "overrun"}, 9, 10,
     "the 9 h it has run and 60 min more: it has run longer than median of bert's last 9"),
]


@pytest.mark.parametrize("case,options,ran_h,hours,words", CASES, ids=[c[0] for c in CASES])
def test_estimate_given_what_it_has_run(case, options, ran_h, hours, words):
    e = Estimator(HISTORY, **options).estimate(bert(ran_h))
    assert e.seconds == pytest.approx(hours * H)
    assert words in e.basis
    assert e.source == "user"


def test_a_time_limit_still_caps_the_estimate():
    e = Estimator(HISTORY, given_run="quantile").estimate(bert(4.5, time_limit_s=6 * H))
    assert e.seconds == 6 * H and e.source == "limit"


def test_a_new_run_moves_the_conditional_estimate():
    est = Estimator(HISTORY, given_run="quantile")
    assert est.estimate(bert(9.5)).seconds == 5 * H  # past every run: the median stands
    est.add(PastRun("bert", "t", "job", 2, 12 * H, ended_at=20.0))
    assert est.estimate(bert(9.5)).seconds == 12 * H


@pytest.mark.parametrize("left,index", [([1.0], 1.0), ([1.0, 1.0], 1.0), ([1.0, 9.0], 2.0), ([2.0, 3.0, 100.0], 4.0), ([3.0, 4.0], 3.5)])
def test_gittins_left(left, index):
    assert gittins_left(left) == pytest.approx(index)


def test_a_job_near_the_end_of_the_spread_ranks_ahead_of_new_work():
    """The point of it: a bert job 6 h in (median 5 h) ranks by plain least attained service without
    it (12 GPU-h: behind new work estimated 10 GPU-h), and by its conditional remaining with it (2 h x 2 GPUs)."""
    new = bert(0)
    for options, ahead in (({}, False), ({"given_run": "quantile"}, True)):
        est = Estimator(HISTORY, **options)
        old = bert(6)
        old = replace(old, id="old", estimate_s=est.estimate(old).seconds)
        fresh = replace(new, estimate_s=est.estimate(new).seconds)
        assert (las_estimates.rank(old) < las_estimates.rank(fresh)) is ahead, options


@pytest.mark.parametrize("options", [{"given_run": "median"}, {"beyond": "never"}, {"given_q": 0}])
def test_bad_options(options):
    with pytest.raises(ValueError):
        Estimator(HISTORY, **options)
