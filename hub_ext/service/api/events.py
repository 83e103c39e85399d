"""``api/events``: the event log (own workloads' events; everything for admins)."""

from __future__ import annotations

from sqlalchemy import or_, select

from ..errors import bad_request
from ..limits import MAX_ID, query_int, query_text
from ..store import EventRow, parse_workload_id
from ..views import event_view
from .base import APIHandler

MAX_EVENTS = 1000


class EventsHandler(APIHandler):
    scopes = {"GET": "use"}

    async def get(self):
        since = query_int(self, "since", 0, 0, MAX_ID)
        limit = query_int(self, "limit", MAX_EVENTS, 1, MAX_EVENTS)
        q = select(EventRow).where(EventRow.id > since).order_by(EventRow.id).limit(limit)
        workload = query_text(self, "workload")
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
