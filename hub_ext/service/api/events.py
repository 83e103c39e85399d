"""``api/events``: the event log (own workloads' events; everything for admins)."""

from __future__ import annotations

from sqlalchemy import or_, select

from ..errors import bad_request
from ..store import EventRow, parse_workload_id
from ..views import event_view
from .base import APIHandler

MAX_EVENTS = 1000


class EventsHandler(APIHandler):
    scopes = {"GET": "use"}

    def _int_arg(self, name: str, default: int | None) -> int | None:
        raw = self.get_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise bad_request(f"{name} must be a whole number, not {raw!r}") from None

    async def get(self):
        since = self._int_arg("since", 0)
        limit = min(self._int_arg("limit", MAX_EVENTS) or MAX_EVENTS, MAX_EVENTS)
        q = select(EventRow).where(EventRow.id > since).order_by(EventRow.id).limit(limit)
        workload = self.get_argument("workload", None)
        if workload:
            seq = parse_workload_id(workload)
            if seq is None:
                raise bad_request(f"workload must be a workload id like w-12, not {workload!r}")
            q = q.where(EventRow.workload_seq == seq)
        if not self.me.admin:
            # Own workloads' events, plus pool-wide ones (team changes) that name no user.
            q = q.where(or_(EventRow.user == self.me.name, EventRow.user.is_(None)))
        with self.pool.store.read() as db:
            rows = [event_view(e) for e in db.scalars(q)]
        last = rows[-1]["id"] if rows else since
        self.write_json({"events": rows, "last_id": last})


handlers = [(r"api/events", EventsHandler)]
