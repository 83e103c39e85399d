"""``api/pool``: nodes and the state of every GPU.

Every lab panel and admin page polls this view, and it is the largest answer
the service gives; it is rendered once per database change and reused for up
to ``MAX_AGE`` seconds (idle times in it are then at most that old).
"""

from __future__ import annotations

import json
import time

from ..views import pool_view
from .base import APIHandler

MAX_AGE = 1.0


class PoolHandler(APIHandler):
    scopes = {"GET": "use"}

    async def get(self):
        store = self.pool.store
        cached = self.settings.get("_pool_view_cache")
        now = time.monotonic()
        if cached is None or cached[0] != store.generation or now - cached[1] > MAX_AGE:
            with store.read() as db:
                body = json.dumps(pool_view(db)).encode()
            cached = (store.generation, now, body)
            self.settings["_pool_view_cache"] = cached
        self.finish(cached[2])


handlers = [(r"api/pool", PoolHandler)]
