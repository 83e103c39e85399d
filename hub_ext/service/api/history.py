"""``api/history``: GPUs in use per team over time (the admin page's plots).

``?window=day`` (15-minute averages over the last 24 hours) or ``?window=40d``
(daily averages over the last 40 days), rebuilt from the event log. Admins get
every team; other users their own teams (``gpupool usage``).
"""

from __future__ import annotations

import time

from ..errors import bad_request
from ..limits import query_text
from ..usage_history import WINDOWS, usage_history
from .base import APIHandler
from .me import known_teams


class HistoryHandler(APIHandler):
    # Admins see every team; anyone else their own teams' curves (``gpupool usage``).
    scopes = {"GET": "use"}

    async def get(self):
        window = query_text(self, "window", "day")
        if window not in WINDOWS:
            raise bad_request(f"unknown window {window!r}: use one of {', '.join(WINDOWS)}")
        with self.pool.store.read() as db:
            history = usage_history(db, window, time.time())
        if not self.me.admin:
            mine = set(self.pool.teams.teams_of(self.me.name, list(self.me.groups), known_teams(self.pool))) if self.me.kind == "user" else set()
            history["teams"] = {t: v for t, v in history["teams"].items() if t in mine}
            history["now"] = {t: v for t, v in history.get("now", {}).items() if t in mine}
        self.write_json(history)


handlers = [(r"api/history", HistoryHandler)]
