"""Keep notebook sessions in step with the JupyterHub servers they belong to.

A session's GPUs are given back by its spawner when the server stops. That
can fail: at shutdown JupyterHub stops its managed services (this one) before
the single-user servers, so the spawner's release finds nobody to tell; a hub
restarted while a spawn waits in the queue forgets the spawn but the queued
request stays. Left alone, such sessions hold (or wait for) GPUs for ever.

``ServerReconcile`` compares the pool with the hub, at start and every
``interval_seconds``:

- a running session whose server is neither running nor pending in the hub is
  ended and its GPUs go back to the pool (event "cancelled", reason "server gone");
- a pending session whose server is no longer being spawned is cancelled.

A spawn waits in the pool's queue inside the spawner's pre-spawn hook, while
the hub reports the server as ``pending: "spawn"``, so a queued spawn counts
as a live server. The database is read first and the hub asked after, so
every session looked at was submitted before the hub answered, and its spawn
(pending in the hub before the session is submitted) shows in the answer.
Sessions younger than ``grace_seconds`` are left alone all the same, a margin
for what this reasoning misses (clocks, a hub still starting up). Sessions submitted
by hand (named other than "notebook"/"notebook-<server>") have no server and
are never touched; nor are sessions being reclaimed for idleness (``stopping``,
handled by ``IdleReclaim``). When the hub cannot be asked, or the service's
token cannot read servers, nothing is ended.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import selectinload
from traitlets import Bool, Float, Integer
from traitlets.config import LoggingConfigurable

from . import events
from .apply import JobActions, release
from .hub import HubClient, HubError, server_name_of
from .store import Store, WorkloadRow, format_workload_id

SERVER_GONE = "server gone"


@dataclass(frozen=True)
class Orphan:
    """A session whose server the hub no longer has."""

    workload_id: str
    seq: int
    state: str  # "pending" or "running", when it was found
    user: str
    server: str


class ServerReconcile(LoggingConfigurable):
    """End sessions whose JupyterHub server is gone (see the module docstring)."""

    enabled = Bool(
        True,
        help="""Compare sessions with the hub's servers at start and every interval_seconds, and end
        those whose server is gone (their GPUs go back to the pool, event reason "server gone").""",
    ).tag(config=True)

    interval_seconds = Float(
        30.0,
        help="""Seconds between comparisons with the hub. A session whose server stopped without
        giving its GPUs back (e.g. at a hub shutdown) holds them at most about this long.""",
    ).tag(config=True)

    grace_seconds = Float(
        60.0,
        help="""Sessions submitted less than this many seconds ago are left alone, a margin while a
        spawn and the hub's view of it settle (a hub still starting up, clocks).""",
    ).tag(config=True)

    concurrency = Integer(
        8,
        help="How many users' servers are asked of the hub at once.",
    ).tag(config=True)

    def __init__(self, store: Store, hub: Callable[[], HubClient | None], on_change: Callable[[], None] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.store = store
        self.hub = hub  # the hub client, configured on IdleReclaim (hub_api_url, hub_api_token)
        self.on_change = on_change  # asks the scheduling loop for a cycle (GPUs were given back)
        self._task: asyncio.Task | None = None
        self._warned: set[str] = set()

    # ------------------------------------------------------------ one pass

    def _sessions(self) -> list[tuple[int, str, str, str, float]]:
        with self.store.read() as db:
            return [
                tuple(r) for r in db.execute(
                    select(WorkloadRow.seq, WorkloadRow.state, WorkloadRow.user, WorkloadRow.name, WorkloadRow.submitted_at)
                    .where(WorkloadRow.kind == "session", WorkloadRow.state.in_(("pending", "running")))
                )
            ]

    async def find_orphans(self, hub: HubClient) -> list[Orphan]:
        """Sessions whose server the hub has neither running nor pending."""
        if not await hub.can_read_servers():
            self._warn_once("scope", "cannot compare sessions with servers: give the gpupool service the read:servers scope")
            return []
        # Sessions first, the hub after: a spawn is pending in the hub before it submits its
        # session, so every session read here has its live spawn in the answers below.
        newest = time.time() - self.grace_seconds
        sessions = [s for s in self._sessions() if server_name_of(s[3]) is not None and s[4] <= newest]
        live_by_user: dict[str, set[str] | None] = {}
        limit = asyncio.Semaphore(max(1, self.concurrency))

        async def ask(user: str) -> None:
            async with limit:
                live_by_user[user] = await hub.live_servers(user)

        await asyncio.gather(*(ask(u) for u in {s[2] for s in sessions}))
        orphans = []
        for seq, state, user, name, _at in sessions:
            live = live_by_user[user]
            if live is None:
                self._warn_once("servers", "the hub's user model lists no servers: give the gpupool service the read:servers scope")
                return []
            server = server_name_of(name)
            if server not in live:
                orphans.append(Orphan(format_workload_id(seq), seq, state, user, server))
        return orphans

    def end(self, orphans: list[Orphan]) -> int:
        """End the orphaned sessions that are still as they were found; how many were ended."""
        if not orphans:
            return 0
        ended = 0
        now = time.time()
        found = {o.seq: o for o in orphans}
        with self.store.write() as db:
            rows = db.scalars(select(WorkloadRow).options(selectinload(WorkloadRow.shares)).where(WorkloadRow.seq.in_(list(found))))
            for w in rows:
                o = found[w.seq]
                if w.state != o.state:
                    continue  # it moved on meanwhile (started, stopped by its spawner, reclaimed)
                where = f"{o.user}'s server {o.server!r}" if o.server else f"{o.user}'s default server"
                if w.state == "running":
                    reason = f"{SERVER_GONE}: {where} is no longer running in JupyterHub; its GPUs went back to the pool"
                else:
                    reason = f"{SERVER_GONE}: {where} is no longer being started in JupyterHub; the request left the queue"
                was = w.state
                release(w, JobActions(), now)  # a session has no process of ours to stop
                w.state = "cancelled"
                w.finished_at = now
                w.queue_position = None
                w.expected_start = None
                w.reason = reason
                events.record(db, "cancelled", reason, w, details={"was": was, "by": "gpupool", "why": SERVER_GONE}, at=now)
                self.log.warning("%s: %s", w.id, reason)
                ended += 1
        if ended and self.on_change:
            self.on_change()
        return ended

    async def run_once(self) -> int:
        """Compare once; how many sessions were ended (0 when the hub could not be asked)."""
        hub = self.hub()
        if hub is None:
            self._warn_once("config", "cannot compare sessions with servers: no hub API URL or token (IdleReclaim.hub_api_url)")
            return 0
        try:
            orphans = await self.find_orphans(hub)
        except HubError as e:
            self.log.warning("could not compare sessions with the hub's servers (trying again in %gs): %s", self.interval_seconds, e)
            return 0
        return self.end(orphans)

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.log.error(message)

    # ------------------------------------------------------------ running

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                self.log.exception("comparing sessions with the hub's servers failed")
            await asyncio.sleep(self.interval_seconds)

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
