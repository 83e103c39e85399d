"""``metrics``: Prometheus metrics (a token with the metrics scope, or open with ``PoolAuth.metrics_require_auth = False``)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST

from .. import metrics
from .base import APIHandler


class MetricsHandler(APIHandler):
    scopes = {"GET": "metrics"}

    async def prepare(self):
        if self.pool.auth.metrics_require_auth:
            await super().prepare()

    async def get(self):
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(metrics.render())


handlers = [(r"metrics", MetricsHandler)]
