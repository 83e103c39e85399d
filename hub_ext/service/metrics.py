"""Prometheus metrics of the pool.

Gauges (GPUs used, free and idle per node and team; queue length) are read
from the database at scrape time, so they are right after a restart and
never drift from what the API shows. Wait times and cycle durations are
observed as they happen; preemptions are counted from the event log.
"""

from __future__ import annotations

from collections import defaultdict

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import func, select

from .store import EventRow, Store, WorkloadRow
from .views import pool_view, teams_view

REGISTRY = CollectorRegistry()

WAIT_SECONDS = Histogram(
    "gpupool_wait_seconds",
    "Seconds from submit to start, per team and kind (a preempted workload counts from its original submit).",
    ["team", "kind"],
    buckets=(1, 5, 15, 60, 300, 900, 1800, 3600, 3 * 3600, 12 * 3600, 24 * 3600, float("inf")),
    registry=REGISTRY,
)
CYCLE_SECONDS = Histogram(
    "gpupool_scheduling_cycle_seconds",
    "Duration of one scheduling cycle (snapshot, core, apply).",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, float("inf")),
    registry=REGISTRY,
)

def record_cycle(decisions, seconds: float) -> None:
    CYCLE_SECONDS.observe(seconds)


def record_start(team: str, kind: str, waited_seconds: float) -> None:
    WAIT_SECONDS.labels(team=team, kind=kind).observe(max(0.0, waited_seconds))


class PoolCollector:
    """Reads the pool's current state at scrape time."""

    def __init__(self, store: Store):
        self.store = store

    def collect(self):
        with self.store.read() as db:
            pool = pool_view(db)
            teams = teams_view(db)
            queue = db.execute(
                select(WorkloadRow.team, func.count()).where(WorkloadRow.state == "pending").group_by(WorkloadRow.team)
            ).all()
            preemptions = db.execute(
                select(EventRow.team, EventRow.kind, func.count())
                .where(EventRow.kind.in_(("preempted", "reclaimed")))
                .group_by(EventRow.team, EventRow.kind)
            ).all()
        total = GaugeMetricFamily("gpupool_node_gpus", "GPUs on a node.", labels=["node", "simulated"])
        used = GaugeMetricFamily("gpupool_node_gpus_used", "GPUs held by workloads on a node (fractions add up).", labels=["node"])
        free = GaugeMetricFamily("gpupool_node_gpus_free", "GPUs free on a node (fractions add up).", labels=["node"])
        idle = GaugeMetricFamily("gpupool_node_gpus_idle", "GPUs held but idle (per the latest readings) on a node.", labels=["node"])
        for node in pool["nodes"]:
            n_used = sum(g["used_fraction"] for g in node["gpus"])
            n_idle = sum(1 for g in node["gpus"] if g["holders"] and g["idle_seconds"] is not None)
            total.add_metric([node["name"], str(node["simulated"]).lower()], len(node["gpus"]))
            used.add_metric([node["name"]], n_used)
            free.add_metric([node["name"]], len(node["gpus"]) - n_used)
            idle.add_metric([node["name"]], n_idle)
        yield from (total, used, free, idle)

        team_used = GaugeMetricFamily("gpupool_team_gpus_used", "GPUs held by a team's workloads.", labels=["team"])
        team_quota = GaugeMetricFamily("gpupool_team_quota_gpus", "A team's guaranteed GPUs.", labels=["team"])
        team_borrowed = GaugeMetricFamily("gpupool_team_gpus_borrowed", "GPUs a team uses beyond its quota.", labels=["team"])
        idle_by_team: dict[str, float] = defaultdict(float)
        for node in pool["nodes"]:
            for g in node["gpus"]:
                if g["idle_seconds"] is not None:
                    for h in g["holders"]:
                        idle_by_team[h["team"]] += h["fraction"]
        team_idle = GaugeMetricFamily("gpupool_team_gpus_idle", "GPUs a team holds that are idle.", labels=["team"])
        for t in teams:
            team_used.add_metric([t["name"]], t["usage"])
            team_quota.add_metric([t["name"]], t["quota"])
            team_borrowed.add_metric([t["name"]], t["borrowed"])
            team_idle.add_metric([t["name"]], idle_by_team.get(t["name"], 0.0))
        yield from (team_used, team_quota, team_borrowed, team_idle)

        queue_len = GaugeMetricFamily("gpupool_queue_length", "Pending workloads per team.", labels=["team"])
        for team, count in queue:
            queue_len.add_metric([team], count)
        yield queue_len

        preempted = CounterMetricFamily("gpupool_preemptions", "Workloads preempted or reclaimed, per team.", labels=["team", "kind"])
        for team, kind, count in preemptions:
            preempted.add_metric([team or "", kind], count)
        yield preempted


_collector_registered = False


def register_store(store: Store) -> None:
    global _collector_registered
    if not _collector_registered:
        REGISTRY.register(PoolCollector(store))
        _collector_registered = True


def render() -> bytes:
    return generate_latest(REGISTRY)
