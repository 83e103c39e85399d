"""Run-time estimates: how long a workload will run, learned from history.

Plain data in (``PastRun``: how long past workloads of the pool ran), plain
data out (``Estimate``: seconds, and the basis a person reads). The core
never sees a workload's true duration; it sees a declared time limit and,
where history allows, an estimate, both labelled as such.

Where an estimate comes from, most specific first:

1. the same user's past workloads of the same kind (session or job) and
   GPU count;
2. else the team's;
3. else the whole pool's;

each only when it has at least ``min_runs`` of them. The statistic is a
quantile (the median by default) of the last ``last`` such runs: robust to
the odd run that crashed at once or ran for a week. With a declared time
limit the estimate is at most the limit (the pool stops the workload
there); with a limit and no history, the limit is the estimate.

A running workload's remaining time is its estimate minus what it has run,
bounded below (``remaining_s``): a job that has overrun its estimate is not
"ending now", it is expected to run a while longer, in proportion to how far
it has overrun.

Given what a workload has already run (``Estimator(given_run=...)``, off by
default): a workload that has run ``a`` seconds at its asked size (attained
GPU-seconds / asked GPUs; what a past run's ``ran_s`` means) is estimated
from the past runs of its history level that ran **longer than** ``a`` only
(the conditional estimate; a median says nothing of the spread of past runs,
so a job near the median's end would read "about to end" or "overran" alike):
their quantile ``q`` (``"quantile"``), their mean (``"mean"``), or the
Gittins index of their remaining parts (``"gittins"``: the least, over the
longer runs' ends, of expected time to that end over the chance of ending by
then; a rank more than a duration). New work (nothing run yet) is estimated
as without the option. ``beyond`` says what a workload that has run longer
than its estimate (or, conditioned, than every past run) is estimated at:
``"las"`` (the default) leaves the estimate as it is (overrun: the core ranks
it by plain least attained service); ``"overrun"`` applies ``remaining_s``'s
rule to it: what it has run plus OVERRUN_SHARE of its overrun, at least
MIN_REMAINING_S more.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

from .model import Workload

# An overrunning workload is expected to run at least this much longer ...
MIN_REMAINING_S = 300.0
# ... or this share of what it has run so far, whichever is more.
OVERRUN_SHARE = 0.25

# Estimator(given_run=...): how an estimate reads what a workload has already run ("off": it does not).
GIVEN_RUN = ("off", "quantile", "mean", "gittins")
# Estimator(beyond=...): a workload that has run longer than its estimate ("las": the estimate stands, overrun).
BEYOND = ("las", "overrun")

_NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 16: "sixteen"}


@dataclass(frozen=True)
class PastRun:
    """One past run of a workload: who, what shape, how long it held its GPUs."""

    user: str
    team: str
    kind: str  # "session" | "job"
    gpus: float
    ran_s: float
    ended_at: float


@dataclass(frozen=True)
class Estimate:
    seconds: float | None  # None: nothing is known
    basis: str  # "median of alice's last 14 two-GPU jobs"
    source: str  # "user" | "team" | "pool" | "limit" | "none"


def duration_text(seconds: float) -> str:
    """A short duration a person reads: 45 s, 25 min, 2.5 h, 3 d."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h".replace(".0 h", " h")
    return f"{seconds / 86400:.1f} d".replace(".0 d", " d")


def shape_text(kind: str, gpus: float, n: int) -> str:
    """``two-GPU jobs``, ``0.5-GPU sessions``."""
    if gpus < 1:
        size = f"{gpus:g}-GPU"
    else:
        size = f"{_NUMBERS.get(int(gpus), f'{gpus:g}')}-GPU"
    return f"{size} {kind}" + ("s" if n != 1 else "")


def quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile of a non-empty list (0 < q <= 1)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _kind_of(w: Workload) -> str:
    return getattr(w.kind, "value", w.kind)


class Estimator:
    """Estimates from a history of past runs (user, then team, then pool)."""

    def __init__(self, history: Iterable[PastRun] = (), *, min_runs: int = 3, last: int = 50, q: float = 0.5,
                 given_run: str = "off", beyond: str = "las", given_q: float | None = None):
        if min_runs < 1 or last < 1 or not 0 < q <= 1:
            raise ValueError("min_runs and last must be at least 1, q within (0, 1]")
        if given_run not in GIVEN_RUN or beyond not in BEYOND:
            raise ValueError(f"given_run must be one of {GIVEN_RUN}, beyond one of {BEYOND}")
        if given_q is not None and not 0 < given_q <= 1:
            raise ValueError("given_q must be within (0, 1]")
        self.min_runs = min_runs
        self.last = last
        self.q = q
        self.given_run = given_run
        self.beyond = beyond
        self.given_q = q if given_q is None else given_q  # the quantile of the longer runs ("quantile")
        self._sorted: dict[tuple, list[float]] = {}  # key -> its recent runs' ran_s, sorted (given_run)
        self._runs: dict[tuple, list[PastRun]] = {}
        for r in sorted(history, key=lambda r: r.ended_at):
            if not (r.ran_s >= 0 and math.isfinite(r.ran_s)):
                continue
            shape = (r.kind, float(r.gpus))
            for key in (("user", r.team, r.user, *shape), ("team", r.team, *shape), ("pool", *shape)):
                self._runs.setdefault(key, []).append(r)
        self._memo: dict[tuple, Estimate | None] = {}

    def add(self, run: PastRun) -> None:
        """A run just ended (the simulator learns as it goes)."""
        shape = (run.kind, float(run.gpus))
        for key in (("user", run.team, run.user, *shape), ("team", run.team, *shape), ("pool", *shape)):
            self._runs.setdefault(key, []).append(run)
            self._memo.pop(key, None)
            self._sorted.pop(key, None)

    def _from(self, key: tuple, who: str) -> Estimate | None:
        if key in self._memo:
            return self._memo[key]
        runs = self._runs.get(key)
        found = None
        if runs is not None and len(runs) >= self.min_runs:
            recent = runs[-self.last :]
            if len(runs) > 4 * self.last:  # keep memory bounded for long histories
                del runs[: -self.last]
            stat = "median" if self.q == 0.5 else f"{self.q:.0%} quantile"
            kind, gpus = key[-2], key[-1]
            found = Estimate(
                quantile([r.ran_s for r in recent], self.q),
                f"{stat} of {who} last {len(recent)} {shape_text(kind, gpus, len(recent))}",
                key[0],
            )
        self._memo[key] = found
        return found

    def learned(self, w: Workload) -> Estimate:
        """From history only (no limit): user, team, pool, or nothing known."""
        kind, gpus = _kind_of(w), float(w.gpus)
        for key, who in (
            (("user", w.team, w.user, kind, gpus), f"{w.user}'s"),
            (("team", w.team, kind, gpus), f"team {w.team}'s"),
            (("pool", kind, gpus), "the pool's"),
        ):
            e = self._from(key, who)
            if e is not None:
                if self.given_run == "off" and self.beyond == "las":
                    return e
                return self._given(key, who, e, w)
        return Estimate(None, f"no run-time history for {shape_text(kind, gpus, 2)} and no time limit", "none")

    def _given(self, key: tuple, who: str, e: Estimate, w: Workload) -> Estimate:
        """``e`` (from ``key``'s runs) given what ``w`` has run: from the runs longer than that, or beyond them."""
        ran = w.attained_gpu_s / w.gpus if w.gpus > 0 else 0.0
        if ran <= 0:
            return e  # new work: nothing run, nothing to condition on
        done = duration_text(ran)
        if self.given_run != "off":
            vals = self._sorted.get(key)
            if vals is None:
                vals = self._sorted[key] = sorted(r.ran_s for r in self._runs[key][-self.last :])
            longer = vals[bisect_right(vals, ran):]
            if longer:
                n = len(longer)
                if self.given_run == "quantile":
                    stat = "median" if self.given_q == 0.5 else f"{self.given_q:.0%} quantile"
                    seconds = quantile(longer, self.given_q)
                elif self.given_run == "mean":
                    stat, seconds = "mean", sum(longer) / n
                else:
                    stat, seconds = "Gittins index", ran + gittins_left([v - ran for v in longer])
                kind, gpus = key[-2], key[-1]
                return Estimate(
                    seconds,
                    f"{stat} of the {n} of {who} last {len(vals)} {shape_text(kind, gpus, len(vals))} "
                    f"that ran longer than the {done} it has run",
                    e.source,
                )
            bound = vals[-1]
            kind, gpus = key[-2], key[-1]
            than = f"each of {who} last {len(vals)} {shape_text(kind, gpus, len(vals))}"
        else:
            bound, than = e.seconds, e.basis
        if ran < bound or self.beyond == "las":
            return e
        more = max(MIN_REMAINING_S, OVERRUN_SHARE * (ran - bound))
        return Estimate(ran + more, f"the {done} it has run and {duration_text(more)} more: it has run longer than {than}", e.source)

    def estimate(self, w: Workload) -> Estimate:
        """The estimate for ``w``: learned, at most its declared time limit."""
        e = self.learned(w)
        limit = w.time_limit_s
        if limit is None:
            return e
        if e.seconds is None:
            return Estimate(float(limit), f"its time limit of {duration_text(limit)}", "limit")
        if e.seconds > limit:
            return Estimate(float(limit), f"its time limit of {duration_text(limit)} ({e.basis} is longer)", "limit")
        return e


def gittins_left(left: list[float]) -> float:
    """The Gittins index of remaining parts ``left`` (sorted, > 0) as a time: the least, over serving up to each
    part, of the expected time served over the chance of ending within it (the mean, serving to the last)."""
    k = len(left)
    best = math.inf
    served = 0.0
    for j, x in enumerate(left, 1):
        served += x
        best = min(best, (served + (k - j) * x) / j)
    return best


def remaining_s(total: float | None, elapsed: float, limit: float | None = None) -> float | None:
    """Seconds a running workload is expected to run still; None when nothing is known.

    At least MIN_REMAINING_S; an overrunning workload (elapsed beyond its
    estimate) is expected to run OVERRUN_SHARE of its overrun longer (a job 6 h
    over its estimate: 1.5 h more), never past its time limit.
    """
    if total is None:
        if limit is None:
            return None
        total = limit
    elapsed = max(0.0, elapsed)
    left = max(total - elapsed, MIN_REMAINING_S, OVERRUN_SHARE * (elapsed - total))
    if limit is not None:
        left = min(left, max(limit - elapsed, 0.0))  # the pool stops it there
    return left
