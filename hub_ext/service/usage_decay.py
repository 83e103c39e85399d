"""Decayed past usage in the service: kept up to date on every cycle, kept across restarts.

The arithmetic is the core's (``hub_ext.scheduler.decay``), the same the
simulator runs on its virtual clock; this module feeds it the GPUs in use per
team and user, and keeps the result in the ``usage_history`` table (written
at most every ``persist_seconds``, and read back at start, so a restart
forgets at most that much).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from traitlets import Float, TraitError, validate
from traitlets.config import LoggingConfigurable

from ..scheduler.decay import DecayedUsage
from ..scheduler.model import UsageHistory
from .store import ShareRow, UsageHistoryRow, WorkloadRow

# Between a minute (anything shorter is no memory) and a year.
SHORTEST_HALF_LIFE, LONGEST_HALF_LIFE = 60.0, 365 * 86400.0


class UsageDecay(LoggingConfigurable):
    half_life_seconds = Float(
        7 * 86400.0,
        help="""Half-life of past GPU usage in the fair-share order between teams and between users:
        usage an hour ago counts almost fully, usage one half-life ago counts half. The default, a
        week, lets a team that ran the pool all week borrow after teams that did not. At least a
        minute, at most a year.""",
    ).tag(config=True)

    persist_seconds = Float(
        60.0,
        help="Write the decayed usage to the database at most this often (a restart forgets at most this much).",
    ).tag(config=True)

    @validate("half_life_seconds")
    def _valid_half_life(self, proposal):
        value = proposal["value"]
        if not (SHORTEST_HALF_LIFE <= value <= LONGEST_HALF_LIFE):
            raise TraitError(
                f"UsageDecay.half_life_seconds must be between {SHORTEST_HALF_LIFE:g} s (a minute) and "
                f"{LONGEST_HALF_LIFE:g} s (a year); got {value!r}"
            )
        return value

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._decay: DecayedUsage | None = None
        self._saved_at = float("-inf")

    def _load(self, db: Session) -> DecayedUsage:
        teams, users, at = {}, {}, None
        for row in db.scalars(select(UsageHistoryRow)):
            if row.user:
                users[(row.team, row.user)] = row.average_gpus
            else:
                teams[row.team] = row.average_gpus
            at = row.updated_at if at is None else max(at, row.updated_at)
        return DecayedUsage(self.half_life_seconds, UsageHistory(self.half_life_seconds, teams, users), at)

    def update(self, db: Session, now: float, in_use: dict | None = None) -> UsageHistory:
        """Advance the history to ``now`` with the GPUs in use; persist it now and then.

        ``in_use``: GPUs held by (team, user), as the scheduling loop's kept snapshot counts them
        (``KeptSnapshot.in_use``); without, they are read from the database."""
        if self._decay is None:
            self._decay = self._load(db)
        usage: dict[str, float] = {}
        user_usage: dict[tuple[str, str], float] = {}
        if in_use is not None:
            held = [(team, user, gpus) for (team, user), gpus in in_use.items()]
        else:
            held = db.execute(
                select(WorkloadRow.team, WorkloadRow.user, func.sum(ShareRow.fraction))
                .join(ShareRow, ShareRow.workload_seq == WorkloadRow.seq)
                .where(WorkloadRow.state.in_(("running", "stopping")))
                .group_by(WorkloadRow.team, WorkloadRow.user)
            )
        for team, user, gpus in held:
            usage[team] = usage.get(team, 0.0) + gpus
            user_usage[(team, user)] = gpus
        history = self._decay.update(now, usage, user_usage)
        if now - self._saved_at >= self.persist_seconds:
            self.save(db, now)
        return history

    def save(self, db: Session, now: float) -> None:
        h = self._decay.history
        rows = {(r.team, r.user): r for r in db.scalars(select(UsageHistoryRow))}
        wanted = {(t, ""): g for t, g in h.teams.items()}
        wanted.update({k: g for k, g in h.users.items()})
        for key, row in rows.items():
            if key not in wanted:
                db.delete(row)
        for (team, user), g in wanted.items():
            row = rows.get((team, user))
            if row is None:
                db.add(UsageHistoryRow(team=team, user=user, average_gpus=g, updated_at=now))
            else:
                row.average_gpus, row.updated_at = g, now
        self._saved_at = now

    @property
    def history(self) -> UsageHistory | None:
        return self._decay.history if self._decay is not None else None
