"""``api/queue``: pending workloads in the order the scheduler would start them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..store import WorkloadRow
from .base import APIHandler


PUBLIC_FIELDS = ("id", "user", "team", "kind", "gpus", "gpu_model", "priority", "state",
                 "queue_position", "reason", "expected_start", "submitted_at", "preemptions")


class QueueHandler(APIHandler):
    scopes = {"GET": "use"}

    async def get(self):
        with self.pool.store.read() as db:
            rows = list(
                db.scalars(
                    select(WorkloadRow).options(selectinload(WorkloadRow.shares)).where(WorkloadRow.state == "pending")
                )
            )
            big = 1 << 30
            queue = self.pool.loop.queue  # the last cycle's positions (queue_state.py); work since, at the end
            rows.sort(key=lambda w: (queue.position(w.id) or big, w.submitted_at, w.seq))
            entries = []
            for w in rows:
                view = self.workload_view(w)
                if not self.me.may_act_on(w.user):
                    # Others' queued work is visible (so waits make sense) but not its details.
                    view = {k: view[k] for k in PUBLIC_FIELDS}
                entries.append(view)
        self.write_json({"queue": entries, "length": len(entries)})


handlers = [(r"api/queue", QueueHandler)]
