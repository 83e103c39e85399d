"""Usage decay: how much GPU each team and user used in the recent past.

Fair share at one instant forgets: a team that ran the whole pool all week
and a team that just arrived look the same the moment both queues fill. As in
Slurm's Fair Tree, KAI and Kueue, past usage counts, fading with a half-life.

The memory is an exponentially weighted average of GPUs in use: constant use
of g GPUs averages g; a team that stops fades to half its average after one
half-life. Between two updates ``dt`` apart, with ``g`` GPUs in use:

    average' = g + (average - g) * 0.5 ** (dt / half_life)

(exact when usage was constant over ``dt``). The service and the simulator
both call ``advance`` with their own clock; the core reads the result as
plain data (``Snapshot.history`` / ``Scheduler.history``).

How the order uses it (fairshare.team_share, ordering.py): a team borrowing
beyond its quota is ranked by its borrowed GPUs now **plus** its average
beyond its quota in the past, per over-quota weight; a user inside a team by
GPUs in use now plus their past average. Quota stays a guarantee: work that
fits within its team's quota comes first whatever the past.
"""

from __future__ import annotations

from .model import UsageHistory

# Averages below this are forgotten (a team gone for many half-lives).
NEGLIGIBLE = 1e-4


def factor(dt: float, half_life_s: float) -> float:
    """What is left of the past after ``dt`` seconds."""
    if dt <= 0:
        return 1.0
    return 0.5 ** (dt / half_life_s)


def advance_one(average: float, gpus: float, dt: float, half_life_s: float) -> float:
    f = factor(dt, half_life_s)
    return gpus + (average - gpus) * f


def advance(history: UsageHistory, usage: dict, user_usage: dict, dt: float) -> UsageHistory:
    """The history ``dt`` seconds later, with ``usage`` (team -> GPUs) and
    ``user_usage`` ((team, user) -> GPUs) in use throughout."""
    h = history.half_life_s
    f = factor(dt, h)
    teams = {}
    for name in set(history.teams) | set(usage):
        g = usage.get(name, 0.0)
        avg = g + (history.teams.get(name, 0.0) - g) * f
        if avg > NEGLIGIBLE or g:
            teams[name] = avg
    users = {}
    for key in set(history.users) | set(user_usage):
        g = user_usage.get(key, 0.0)
        avg = g + (history.users.get(key, 0.0) - g) * f
        if avg > NEGLIGIBLE or g:
            users[key] = avg
    return UsageHistory(h, teams, users)


class DecayedUsage:
    """Keeps a history up to date on a clock (the simulator's, or the service's)."""

    def __init__(self, half_life_s: float, history: UsageHistory | None = None, at: float | None = None):
        self.history = history or UsageHistory(half_life_s)
        self.at = at

    def update(self, now: float, usage: dict, user_usage: dict) -> UsageHistory:
        """Usage since the last update was ``usage`` (what is in use now: updates come often)."""
        if self.at is not None and now > self.at:
            self.history = advance(self.history, usage, user_usage, now - self.at)
        self.at = now if self.at is None else max(self.at, now)
        return self.history


def span(seconds: float) -> str:
    """A half-life in words: "week", "day", "3 hours"."""
    for name, length in (("week", 7 * 86400), ("day", 86400), ("hour", 3600)):
        if abs(seconds - length) < 1:
            return name
    if seconds >= 86400:
        return f"{seconds / 86400:g} days"
    if seconds >= 3600:
        return f"{seconds / 3600:g} hours"
    return f"{seconds / 60:g} minutes"


def past_excess(history: UsageHistory | None, team: str, quota: float) -> float:
    """GPUs a team used beyond its quota on average in the recent past (0 without history)."""
    if history is None:
        return 0.0
    return max(0.0, history.teams.get(team, 0.0) - quota)


def past_user(history: UsageHistory | None, team: str, user: str) -> float:
    if history is None:
        return 0.0
    return history.users.get((team, user), 0.0)


def in_words(history: UsageHistory | None, team: str, quota: float) -> str | None:
    """"team nlp used 2.3 times its quota over the last week (6.9 GPUs on average)"; None when unremarkable."""
    if history is None:
        return None
    avg = history.teams.get(team, 0.0)
    if avg <= quota + 0.05:
        return None
    when = f"over the last {span(history.half_life_s)}" if span(history.half_life_s) in ("week", "day", "hour") else f"recently (half-life {span(history.half_life_s)})"
    if quota > 0:
        return f"team {team} used {avg / quota:.1f} times its quota {when} ({avg:.1f} GPUs on average, quota {quota:g})"
    return f"team {team} has no quota and used {avg:.1f} GPUs on average {when}"
