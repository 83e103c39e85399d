"""Helpers for the reclaim tests that drive a real service: play a node agent, read events."""

from __future__ import annotations

import threading

from hub_ext.client import PoolUnavailable


class Reporter:
    """Plays a node agent: reports ``utilization[uuid]`` for a node every half second until stopped."""

    def __init__(self, hub, node: str, utilization: dict[str, float | None], model: str):
        self.client = hub.client(token=hub.agent_token)
        self.node, self.utilization, self.model = node, utilization, model
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            gpus = [{"index": i, "uuid": u, "model": self.model, "utilization": util, "memory_used_mib": 0}
                    for i, (u, util) in enumerate(sorted(self.utilization.items()))]
            try:
                self.client.report_readings(self.node, gpus)
            except PoolUnavailable:
                pass  # the service is restarting: try again, as the real agent does
            self._stop.wait(0.5)

    def __enter__(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(5)

    def __exit__(self, *exc):
        self.stop()


def kinds(client, workload_id) -> list[str]:
    return [e["kind"] for e in client.events(workload_id=workload_id)["events"]]


def uuids(workload) -> list[str]:
    return [s["gpu_uuid"] for s in workload["allocation"]["shares"]]
