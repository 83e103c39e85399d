"""``gpupool usage``: my team's GPUs against its quota over time (the habit of Slurm's ``sreport``).

From the service's usage history (``api/history``: averages per bucket, rebuilt from the event
log): one line per hour of the last day (``--window day``) or per day of the last 40
(``--window 40d``), with a bar, the quota marked ``|``, and a summary: now, average, peak.
"""

from __future__ import annotations

import datetime as dt

from .common import connection_options, gpus, parse_time, print_json, run

BAR = 40  # characters for the larger of the quota and the peak


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "usage", parents=[connection_options()], help="show my team's GPUs against its quota over time",
        description="GPUs your team held over the last day (hourly) or 40 days (daily), against its quota.",
    )
    p.add_argument("--team", help="the team to show (default: each of my teams)")
    p.add_argument("--window", choices=("day", "40d"), default="day", help="last day, hourly (default), or last 40 days, daily")
    p.set_defaults(func=cmd_usage)


def _merge(times: list[str], values: list[float], per: int) -> list[tuple[str, float]]:
    """Average ``per`` consecutive buckets (the day's 15-minute buckets into hours)."""
    out = []
    for i in range(0, len(values), per):
        chunk = values[i:i + per]
        out.append((times[i], sum(chunk) / len(chunk)))
    return out


def _label(iso_time: str, window: str) -> str:
    t = parse_time(iso_time)
    if t is None:
        return iso_time
    when = dt.datetime.fromtimestamp(t, tz=dt.timezone.utc)
    return when.strftime("%H:%M UTC") if window == "day" else when.strftime("%Y-%m-%d")


def _bar(value: float, quota: float, scale: float) -> str:
    filled = int(round(BAR * value / scale)) if scale > 0 else 0
    cells = ["#" if i < filled else " " for i in range(BAR)]
    mark = int(round(BAR * quota / scale)) if scale > 0 else 0
    if 0 < mark <= BAR:
        cells.insert(mark, "|")
    return "".join(cells).rstrip()


def format_usage(team: str, quota: float, history: dict) -> str:
    window = history.get("window", "day")
    times = history.get("times") or []
    values = (history.get("teams") or {}).get(team) or [0.0] * len(times)
    bucket = float(history.get("bucket_seconds") or 900)
    per = max(1, int(round(3600 / bucket))) if window == "day" else 1
    rows = _merge(times, values, per) if times else []
    peak = max((v for _, v in rows), default=0.0)
    now = float((history.get("now") or {}).get(team, 0.0))
    average = sum(values) / len(values) if values else 0.0
    scale = max(quota, peak, now, 1e-9)
    span = "last 24 hours" if window == "day" else "last 40 days"
    share = f" ({100 * average / quota:.0f}% of quota)" if quota > 0 else ""
    lines = [
        f"team {team}: quota {gpus(quota)} GPUs; holds {gpus(round(now, 2))} now; "
        f"{span}: average {average:.2f}{share}, peak {peak:.2f} ('|' marks the quota)",
        "",
    ]
    for label, value in rows:
        lines.append(f"{_label(label, window):>16}  {value:6.2f}  {_bar(value, quota, scale)}")
    return "\n".join(lines)


def cmd_usage(args) -> int:
    def action(client):
        me = client.me()
        teams = [args.team] if args.team else list(me.get("teams") or [])
        if not teams:
            print("gpupool usage: you are in no team (say which with --team)")
            return 1
        quotas = {t["name"]: float(t.get("quota") or 0.0) for t in client.teams().get("teams", [])}
        history = client.history(args.window)
        if args.json:
            print_json({"teams": {t: (history.get("teams") or {}).get(t) for t in teams}, "times": history.get("times"),
                        "quotas": {t: quotas.get(t) for t in teams}, "window": history.get("window")})
            return 0
        print("\n\n".join(format_usage(t, quotas.get(t, 0.0), history) for t in teams))

    return run(args, action)
