"""``api/history``: GPUs in use per team over time (the admin page's plots).

``?window=day`` (15-minute averages over the last 24 hours) or ``?window=40d``
(daily averages over the last 40 days), rebuilt from the event log.
"""

from __future__ import annotations

import time

from ..errors import bad_request
from ..limits import query_text
from ..usage_history import WINDOWS, usage_history
from .base import APIHandler


class HistoryHandler(APIHandler):
    scopes = {"GET": "admin"}

    async def get(self):
        window = query_text(self, "window", "day")
        if window not in WINDOWS:
            raise bad_request(f"unknown window {window!r}: use one of {', '.join(WINDOWS)}")
        with self.pool.store.read() as db:
            self.write_json(usage_history(db, window, time.time()))


handlers = [(r"api/history", HistoryHandler)]
