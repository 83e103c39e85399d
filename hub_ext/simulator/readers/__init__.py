"""Trace readers: one module per shared trace format, one entry point.

``read_trace(path)`` recognises the format from the header (or takes
``format=``), reads every row strictly, and returns a ``Trace`` with times
shifted so the first submission is at 0. A bad row raises ``TraceError``
naming the file and row; with ``skip_bad_rows=True`` it is counted in
``Trace.excluded`` instead (never dropped silently).
"""

from __future__ import annotations

import datetime as dt
import os

from ..trace import Trace, TraceError, TraceJob
from . import alibaba, philly, pollux, tiresias
from ._rows import check_shape, read_header, rows

FORMATS = {m.FORMAT: m for m in (philly, tiresias, pollux, alibaba)}
BAD_ROW = "bad row (skipped on request)"


def detect_format(path: str) -> str:
    """The format whose required columns the file's header has."""
    header = set(read_header(path))
    for name, module in FORMATS.items():
        wanted = {c: (c, *module.COLUMNS.get(c, ())) for c in module.REQUIRED}
        if all(header & set(names) for names in wanted.values()):
            return name
    raise TraceError(
        f"{os.path.basename(path)}: cannot tell the trace format from its header ({', '.join(sorted(header))}); "
        f"known formats: {', '.join(FORMATS)} (give one with --format)"
    )


def read_trace(
    path: str,
    format: str | None = None,
    *,
    skip_bad_rows: bool = False,
    pollux_workload: str | None = pollux.DEFAULT_WORKLOAD,
) -> Trace:
    if not os.path.isfile(path):
        raise TraceError(f"{path}: no such trace file")
    format = format or detect_format(path)
    if format not in FORMATS:
        raise TraceError(f"unknown trace format {format!r}; known: {', '.join(FORMATS)}")
    module = FORMATS[format]
    jobs: list[TraceJob] = []
    excluded: dict[str, int] = {}
    bad_examples: list[str] = []
    for row in rows(path, module.COLUMNS, module.REQUIRED):
        try:
            check_shape(row)
            got = module.job(row, pollux_workload) if module is pollux else module.job(row)
        except TraceError as e:
            if not skip_bad_rows:
                raise
            excluded[BAD_ROW] = excluded.get(BAD_ROW, 0) + 1
            if len(bad_examples) < 3:
                bad_examples.append(str(e))
            continue
        if got is None:
            continue  # a row of another pollux workload: not part of this trace, not an exclusion
        if isinstance(got, str):
            excluded[got] = excluded.get(got, 0) + 1
            continue
        jobs.append(got)
    if not jobs:
        raise TraceError(f"{os.path.basename(path)}: no jobs to replay (format {format}, excluded: {excluded or 'none'})")
    jobs.sort(key=lambda j: j.submitted_at)  # stable: equal times keep file order
    origin_s = jobs[0].submitted_at
    jobs = [j.shifted(origin_s) for j in jobs]
    notes = list(module.NOTES)
    if module is pollux and pollux_workload:
        notes.append(f"only rows of {pollux_workload} (each workload is an independent 8-hour sample)")
    notes.extend(f"skipped: {m}" for m in bad_examples)
    return Trace(
        name=os.path.basename(path),
        format=format,
        jobs=jobs,
        origin=_describe_origin(origin_s),
        notes=notes,
        excluded=excluded,
    )


def _describe_origin(origin_s: float) -> str:
    # Date-time columns parse to Unix seconds; plain-seconds traces start near 0.
    if origin_s > 10 * 365 * 86400:
        return dt.datetime.fromtimestamp(origin_s, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"t={origin_s:g} s in the file"


__all__ = ["FORMATS", "Trace", "TraceError", "TraceJob", "detect_format", "read_trace"]
