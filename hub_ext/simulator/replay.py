"""One call from files to figures: what the CLI and the benchmark share."""

from __future__ import annotations

from .bound import work_conserving_utilisation
from .cluster import Cluster
from .engine import Simulation, SimulationResult
from .policies import make_policy
from .prediction import StartPredictor
from .report import summarise
from .trace import Trace

DEFAULT_CHECKPOINT_INTERVAL_S = 1800.0


def replay(
    trace: Trace,
    cluster: Cluster,
    policy: str,
    *,
    checkpoint_interval: float = DEFAULT_CHECKPOINT_INTERVAL_S,
    end: float | None = None,
    progress: bool = False,
    cycle_interval: float = 0.0,
    notice_s: float = 0.0,
    predict_starts: int = 0,
    policy_options: dict | None = None,
    prediction_options: dict | None = None,
) -> tuple[SimulationResult, dict]:
    """Replay ``trace`` on ``cluster`` (teams checked or derived) under one policy; the raw result and its summary.

    ``predict_starts``: predict the start of at most this many arrivals (pool and fifo; see prediction.py)
    and add ``start_prediction`` to the summary. ``policy_options``: for the pool policy (``make_policy``)."""
    cluster = cluster.with_teams_for(trace)
    hooks = []
    predictor = None
    if predict_starts and policy != "static":
        predictor = StartPredictor(len(trace.jobs), budget=predict_starts, **(prediction_options or {}))
        hooks.append(predictor)
    result = Simulation(
        trace, make_policy(policy, cluster, **(policy_options or {})), checkpoint_interval=checkpoint_interval, end=end,
        progress=progress, cycle_interval=cycle_interval, hooks=hooks, notice_s=notice_s,
    ).run()
    summary = summarise(result)
    if predictor is not None:
        summary["start_prediction"] = predictor.summary()
    summary["cluster"] = cluster.describe()
    summary["cycle_interval_s"] = cycle_interval
    return result, summary


def ceiling(trace: Trace, cluster: Cluster, end: float | None) -> float:
    """The work-conserving bound for this trace, pool size and window (see ``bound``)."""
    return work_conserving_utilisation(trace, cluster.total_gpus, end)
