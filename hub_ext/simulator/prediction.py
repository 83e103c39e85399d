"""How good are expected starts? Predict at submission, compare with the real start.

``StartPredictor`` is a simulation hook. When a job of the trace arrives, it
asks the same forward run the service uses (``hub_ext.scheduler.forward``)
when that job will start: the policy's scheduler state at that moment, with
run-time estimates learned only from jobs finished so far in the replay
(``Estimator``: the same user's, then team's, then pool's past jobs of the
same kind and GPU count), never from the job's own true duration. When the
job really starts, the prediction is scored.

Beside it, two naive baselines at the same moment: the job's position in the
queue (pending work submitted before it, plus one) times the mean run time of
the work finished so far (``baseline``, as the issue defines it: it ignores
that many jobs run at once, so it overshoots on a big pool), and the position
times the mean time between the last 200 completions (``throughput
baseline``: the queue drains at the rate work has been ending).

A forward run costs a few of the core's cycles per queued workload, so at
most ``budget`` arrivals are predicted, evenly spread over the trace (every
k-th arrival); figures are over the predicted jobs that waited longer than
``min_wait_s`` (10 minutes), where a prediction matters.
"""

from __future__ import annotations

import statistics
from collections import deque

from ..scheduler.estimates import Estimator, PastRun
from ..scheduler.forward import run_forward, with_estimates
from .engine import Simulation, SimulationHooks
from .report import percentile


class StartPredictor(SimulationHooks):
    def __init__(self, jobs: int, budget: int = 200, min_wait_s: float = 600.0, horizon_s: float = 30 * 86400.0, max_cycles: int = 2000,
                 quantile: float = 0.5):
        self.every = max(1, jobs // max(1, budget))
        self.min_wait_s = min_wait_s
        self.horizon_s = horizon_s
        self.max_cycles = max_cycles
        self.estimator = Estimator(q=quantile)
        self.arrivals = 0
        self.finished_runs = 0
        self.finished_run_s = 0.0
        self.predicted: dict[str, tuple] = {}  # id -> (submitted, predicted, baseline, throughput baseline)
        self.recent_ends: deque[float] = deque(maxlen=200)
        self.real: dict[str, float] = {}
        self.forward_cycles = 0

    # ------------------------------------------------------------ hooks

    def on_submit(self, sim: Simulation, js, now: float) -> None:
        self.arrivals += 1
        if (self.arrivals - 1) % self.every:
            return
        schedulers = getattr(sim.policy, "schedulers", None)
        if not schedulers or "" not in schedulers:
            return  # one pool only (the pool and fifo policies)
        snapshot = schedulers[""].snapshot(now)
        estimated = with_estimates(snapshot, lambda w: self.estimator.estimate(w).seconds)
        wid = js.workload.id
        forecast = run_forward(estimated, horizon_s=self.horizon_s, max_cycles=self.max_cycles, until=wid).get(wid)
        predicted = forecast.at if forecast is not None else None
        baseline = throughput = None
        position = len(sim.state.pending)  # pending work submitted before it, plus itself
        if self.finished_runs:
            baseline = now + position * self.finished_run_s / self.finished_runs
        ends = self.recent_ends
        if len(ends) >= 2 and ends[-1] > ends[0]:
            throughput = now + position * (ends[-1] - ends[0]) / (len(ends) - 1)
        self.predicted[js.workload.id] = (now, predicted, baseline, throughput)

    def on_start(self, sim: Simulation, js, now: float) -> None:
        if js.workload.id in self.predicted and js.workload.id not in self.real:
            self.real[js.workload.id] = now

    def on_stop(self, sim: Simulation, js, now: float, outcome: str) -> None:
        if outcome == "finished":
            w = js.workload
            kind = getattr(w.kind, "value", w.kind)
            self.estimator.add(PastRun(w.user, w.team, kind, w.gpus, js.job.duration, now))
            self.finished_runs += 1
            self.finished_run_s += js.job.duration
            self.recent_ends.append(now)

    # ------------------------------------------------------------ figures

    def summary(self) -> dict:
        errors, signed, baseline_errors, throughput_errors, within = [], [], [], [], 0
        unknown = 0
        for wid, (submitted, predicted, baseline, throughput) in self.predicted.items():
            start = self.real.get(wid)
            if start is None or start - submitted <= self.min_wait_s:
                continue
            wait = start - submitted
            if predicted is None:
                unknown += 1
                continue
            error = abs(predicted - start)
            errors.append(error)
            signed.append(predicted - start)
            within += error < 0.5 * wait
            if baseline is not None:
                baseline_errors.append(abs(baseline - start))
            if throughput is not None:
                throughput_errors.append(abs(throughput - start))
        return {
            "predictions": len(errors),  # scored: predicted, started, waited longer than min_wait_s
            "predicted_arrivals": len(self.predicted),
            "not_known": unknown,  # waited that long, but the forward run gave no time
            "min_wait_s": self.min_wait_s,
            "every_kth_arrival": self.every,
            "median_abs_error_s": statistics.median(errors) if errors else None,
            "p90_abs_error_s": percentile(errors, 90),
            "median_error_s": statistics.median(signed) if signed else None,  # < 0: predicted too early
            "within_50pct": within / len(errors) if errors else None,
            "baseline_median_abs_error_s": statistics.median(baseline_errors) if baseline_errors else None,
            "throughput_baseline_median_abs_error_s": statistics.median(throughput_errors) if throughput_errors else None,
        }
