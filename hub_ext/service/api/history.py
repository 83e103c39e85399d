"""``api/history`` and ``api/report``: GPU use per team over time (admins).

``api/history?window=day`` (15-minute averages over the last 24 hours) or
``?window=40d`` (daily averages over the last 40 days): GPUs held, rebuilt
from the event log, and GPUs busy, measured by the node agents.

``api/report?start=&end=&format=csv|json``: per team and period, GPU-hours
held and busy, reclaims, preemptions and waits (like Slurm's ``sreport``).
The history: admins get every team; other users their own teams (``gpupool usage``).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from ..errors import bad_request
from ..limits import query_text
from ..usage_history import WINDOWS, report_csv, usage_history, usage_report
from .base import APIHandler
from .me import known_teams

#: The longest period one report covers.
MAX_REPORT_DAYS = 400


class HistoryHandler(APIHandler):
    # Admins see every team; anyone else their own teams' curves (``gpupool usage``).
    scopes = {"GET": "use"}

    async def get(self):
        window = query_text(self, "window", "day")
        if window not in WINDOWS:
            raise bad_request(f"unknown window {window!r}: use one of {', '.join(WINDOWS)}")
        with self.pool.store.read() as db:
            history = usage_history(db, window, time.time())
        if not self.me.admin:
            mine = set(self.pool.teams.teams_of(self.me.name, list(self.me.groups), known_teams(self.pool))) if self.me.kind == "user" else set()
            history["teams"] = {t: v for t, v in history["teams"].items() if t in mine}
            history["now"] = {t: v for t, v in history.get("now", {}).items() if t in mine}
        self.write_json(history)


def parse_time(raw: str, name: str) -> float:
    """An ISO date (2026-12-01) or date and time (2026-12-01T10:00:00Z) as a Unix time; UTC unless it says otherwise."""
    try:
        t = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"{name} must be a date like 2026-12-01 or a time like 2026-12-01T10:00:00Z, not {raw!r}") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.timestamp()


class ReportHandler(APIHandler):
    scopes = {"GET": "admin"}

    async def get(self):
        now = time.time()
        end = parse_time(self.get_argument("end"), "end") if self.get_argument("end", "") else now
        start = parse_time(self.get_argument("start"), "start") if self.get_argument("start", "") else end - 7 * 86400
        if start >= end:
            raise bad_request("start must come before end")
        if end - start > MAX_REPORT_DAYS * 86400:
            raise bad_request(f"a report covers at most {MAX_REPORT_DAYS} days")
        fmt = self.get_argument("format", "json")
        if fmt not in ("json", "csv"):
            raise bad_request(f"format must be json or csv, not {fmt!r}")
        with self.pool.store.read() as db:
            report = usage_report(db, start, min(end, now))
        if fmt == "json":
            self.write_json({"teams": report})
            return
        day = datetime.fromtimestamp(start, tz=timezone.utc).strftime("%Y%m%d")
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", f'attachment; filename="gpupool-usage-{day}.csv"')
        self.finish(report_csv(report))


handlers = [(r"api/history", HistoryHandler), (r"api/report", ReportHandler)]
