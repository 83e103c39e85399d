"""``api/pool``: nodes and the state of every GPU."""

from __future__ import annotations

from ..views import pool_view
from .base import APIHandler


class PoolHandler(APIHandler):
    scopes = {"GET": "use"}

    async def get(self):
        with self.pool.store.read() as db:
            self.write_json(pool_view(db))


handlers = [(r"api/pool", PoolHandler)]
