"""Minimum run-time: recently started work is not a victim.

Preempting a workload a few seconds after it started wastes its start-up
(loading data, compiling, warming caches) and thrashes the pool. As in KAI,
each team sets two minimum run-times (``Team.min_runtime_reclaim_s`` and
``Team.min_runtime_shrink_s``):

* **reclaim**: a workload of a team over its quota is not preempted, so that
  another team gets its quota back, until it has run this long;
* **shrink**: an elastic job's borrowed GPUs (lent beyond what it asked, or
  over its team's quota) are not taken back until it has run this long.

The minimum applies to the victim's team (it protects the victim's work).
While it protects every victim, work within its quota waits; its reason says
for how long (``protected_for``).
"""

from __future__ import annotations

from .model import Running, Team

RECLAIM = "reclaim"
SHRINK = "shrink"


def minimum(team: Team, kind: str) -> float:
    return team.min_runtime_reclaim_s if kind == RECLAIM else team.min_runtime_shrink_s


def protected_for(r: Running, team: Team, now: float, kind: str) -> float:
    """Seconds until ``r`` may be a victim of this ``kind`` (0: it may be now)."""
    least = minimum(team, kind)
    if least <= 0:
        return 0.0
    return max(0.0, r.allocation.started_at + least - now)


def is_protected(r: Running, team: Team, now: float, kind: str) -> bool:
    return protected_for(r, team, now, kind) > 0
