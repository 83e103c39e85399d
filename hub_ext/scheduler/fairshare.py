"""Team quotas, over-quota borrowing by weight, and fair share between users.

* A team's **quota** is guaranteed: work within it starts ahead of any
  borrower and may reclaim GPUs from other teams' over-quota work.
* Beyond its quota a team **borrows** idle GPUs (when borrowing is on).
  Teams are offered GPUs lowest share first: teams below quota by how much of
  it they use, then borrowers by borrowed GPUs divided by over-quota weight,
  so idle GPUs are split between borrowers in proportion to their weights.
* A **limit** is a hard cap on a team's GPUs in use, borrowed or not.
* A non-preemptible workload runs only within quota: borrowed GPUs must be
  preemptible, or an owner could never get them back.
* Which of a team's running workloads are "within quota": the team's running
  work ranked most-protected first (non-preemptible, higher priority, started
  earlier); those that fit inside the quota in that order are within quota,
  the rest (and one that straddles the quota) are over quota. Work larger than
  the whole quota (a gang that could never run in a slice of the quota's size)
  is over quota and uses none of it: the team's smaller work stays within its
  quota beside it, as it would be in its slice (``quota_used``).
* Inside a team, users take turns: the next workload comes from the user
  using the fewest GPUs (after priority), so one user's long queue does not
  lock out a colleague.
"""

from __future__ import annotations

from .model import EPSILON, Running, SchedulerConfig, Team, Workload

# Outcomes of the team check (codes understood by reasons.py).
OK = "ok"
AT_LIMIT = "limit"
NO_BORROWING = "no-borrowing"
NOT_PREEMPTIBLE = "not-preemptible"


def team_of(teams: dict[str, Team], name: str) -> Team:
    """A team not configured has no quota: it may only borrow."""
    t = teams.get(name)
    return t if t is not None else Team(name=name, quota=0.0)


def check(team: Team, usage: float, gpus: float, w: Workload, config: SchedulerConfig, within: float | None = None) -> tuple[str, bool]:
    """May ``w`` take ``gpus`` more GPUs for its team? -> (code, over_quota).

    ``within``: GPUs of the team's work within its quota (``quota_used``); the
    limit counts everything (``usage``)."""
    after = usage + gpus
    if team.limit is not None and after > team.limit + EPSILON:
        return AT_LIMIT, False
    if (usage if within is None else within) + gpus <= team.quota + EPSILON:
        return OK, False
    if not config.borrowing:
        return NO_BORROWING, True
    if not w.preemptible:
        return NOT_PREEMPTIBLE, True
    return OK, True


def team_share(team: Team, usage: float, head: float = 0.0, past: float = 0.0, credit: float = 0.0) -> tuple[int, float]:
    """Sort key: which team is offered GPUs next (lowest first).

    Teams whose next workload fits within their quota come first (least of
    the quota used first); then borrowers, least borrowed per weight first,
    counting ``past``: GPUs borrowed on average in the recent past (decay.py),
    less ``credit``: what its next workload's wait earned it (aging.py).
    """
    if usage + head <= team.quota + EPSILON and usage < team.quota - EPSILON:
        return 0, usage / team.quota
    weight = team.over_quota_weight if team.over_quota_weight > 0 else EPSILON
    return 1, (usage - team.quota + past - credit) / weight


def protection_key(r: Running) -> tuple:
    """Most protected first: non-preemptible, higher priority, started earlier."""
    w = r.workload
    return (w.preemptible, -w.priority, r.allocation.started_at, w.id)


def over_quota(team: Team, ranked: list[Running], gone: set[str]) -> list[Running]:
    """The team's running workloads beyond its quota (most protected excluded).

    Work larger than the whole quota is over it and uses none of it (``quota_used``)."""
    used = 0.0
    out = []
    for r in ranked:
        if r.workload.id in gone:
            continue
        g = r.allocation.gpus
        if g > team.quota + EPSILON:
            out.append(r)
            continue
        used += g
        if used > team.quota + EPSILON:
            out.append(r)
    return out


def quota_used(team: Team, ranked: list[Running], gone: set[str], gpus_of=None) -> float:
    """GPUs of the team's running work that count against its quota: all but work larger than the
    whole quota (a gang that could never run in a slice of the quota's size)."""
    used = 0.0
    for r in ranked:
        if r.workload.id in gone:
            continue
        g = r.allocation.gpus if gpus_of is None else gpus_of(r.workload.id)
        if g <= team.quota + EPSILON:
            used += g
    return used


def quota_marks(team: Team, ranked: list[Running]) -> dict[str, bool]:
    """workload id -> True when it is beyond its team's quota now (``over_quota``'s ranking).

    Applied when a quota changes, so running work is marked by today's quota, not by the one
    it started under.
    """
    beyond = {r.workload.id for r in over_quota(team, ranked, set())}
    return {r.workload.id: r.workload.id in beyond for r in ranked}
