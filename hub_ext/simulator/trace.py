"""A job trace as the simulator replays it: one record per job, times in seconds.

Readers (``hub_ext.simulator.readers``) turn each shared trace format into a
``Trace``. Everything after them is format-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class TraceError(ValueError):
    """A trace (or cluster) file that cannot be read; the message names the file and row."""


@dataclass(frozen=True)
class TraceJob:
    """One job of a trace.

    ``duration`` is how long the job runs at ``gpus`` GPUs (for an elastic job:
    its work is ``duration x gpus`` GPU-seconds, and it runs proportionally
    faster or slower at other sizes). The engine uses it to know when the job
    ends; the scheduler core never sees it.
    """

    id: str
    submitted_at: float  # seconds since the trace's origin
    duration: float  # seconds of run time at ``gpus`` GPUs
    gpus: float  # whole GPUs, or a fraction in (0, 1) of one card
    team: str
    user: str = ""
    min_gpus: int | None = None  # elastic jobs only
    max_gpus: int | None = None  # elastic jobs only
    # Extension point for notebook sessions: "session" workloads hold their GPUs
    # for ``duration`` but compute only ``busy_fraction`` of that time.
    kind: str = "job"
    busy_fraction: float = 1.0

    @property
    def gpu_seconds(self) -> float:
        return self.duration * self.gpus

    def shifted(self, by: float) -> TraceJob:
        # Spelled out: dataclasses.replace costs several times more, and traces hold 10^5 jobs.
        return TraceJob(
            self.id, self.submitted_at - by, self.duration, self.gpus, self.team, self.user,
            self.min_gpus, self.max_gpus, self.kind, self.busy_fraction,
        )


@dataclass
class Trace:
    """Jobs sorted by submit time, with what the reader had to assume to get them."""

    name: str
    format: str
    jobs: list[TraceJob]
    origin: str = ""  # what time 0 is, e.g. "2017-09-04 10:30:41 UTC"
    # Assumptions a reader makes for a format (duration model, team assignment): shown in reports.
    notes: list[str] = field(default_factory=list)
    # Rows deliberately left out, by why (e.g. "CPU-only pod": 1088, "bad row (skipped on request)": 2).
    excluded: dict[str, int] = field(default_factory=dict)

    @property
    def teams(self) -> list[str]:
        return sorted({j.team for j in self.jobs})

    @property
    def span(self) -> float:
        return self.jobs[-1].submitted_at - self.jobs[0].submitted_at if self.jobs else 0.0

    def window(self, start_s: float = 0.0, length_s: float | None = None) -> Trace:
        """Jobs submitted in ``[start_s, start_s + length_s)``, times shifted so the window starts at 0."""
        end = float("inf") if length_s is None else start_s + length_s
        jobs = [j.shifted(start_s) for j in self.jobs if start_s <= j.submitted_at < end]
        return Trace(
            name=self.name,
            format=self.format,
            jobs=jobs,
            origin=f"{self.origin} + {start_s:g} s" if start_s else self.origin,
            notes=list(self.notes),
            excluded=dict(self.excluded),
        )
