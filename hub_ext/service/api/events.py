"""``api/events``: the event log (own workloads' events; everything for admins).

Read forwards (``since``: what happened after the last event seen) or
backwards, newest first (``order=desc``, ``before``: one page older than the
last one shown), narrowed by ``kind``, ``user``, ``team``, ``workload`` or a
text search ``q`` over message, kind, user, team.
"""

from __future__ import annotations

from sqlalchemy import func, or_, select

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
        before = query_int(self, "before", None, 0, MAX_ID)
        limit = query_int(self, "limit", MAX_EVENTS, 1, MAX_EVENTS)
        order = query_text(self, "order", "asc")
        if order not in ("asc", "desc"):
            raise bad_request(f"order must be asc or desc, not {order!r}")
        q = select(EventRow).where(EventRow.id > since)
        if before is not None:
            q = q.where(EventRow.id < before)
        q = q.order_by(EventRow.id.desc() if order == "desc" else EventRow.id).limit(limit)
        for field in ("kind", "user", "team"):
            value = query_text(self, field)
            if value:
                q = q.where(getattr(EventRow, field) == value)
        text = (query_text(self, "q") or "").strip()
        if text:
            if len(text) > 200:
                raise bad_request("the search text is too long (200 characters at most)")
            like = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            q = q.where(or_(*(func.lower(func.coalesce(c, "")).like(like, escape="\\")
                              for c in (EventRow.message, EventRow.kind, EventRow.user, EventRow.team))))
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
        last = max((r["id"] for r in rows), default=since)
        body = {"events": rows, "last_id": last}
        if order == "desc":
            # Where the next (older) page starts; null when this page reached the first event.
            body["next_before"] = rows[-1]["id"] if len(rows) == limit else None
        self.write_json(body)


handlers = [(r"api/events", EventsHandler)]
