"""``gpupool queue``: the whole queue, as Slurm's ``squeue`` shows it.

Every pending workload in the order the scheduler would start them: position, who, team, GPUs,
how long it has waited, the expected start (an estimate; "unknown" when the pool cannot say)
and the reason it waits. Others' work is shown without its command (the API hides it).
"""

from __future__ import annotations

import time

from .common import add_output_option, connection_options, duration, gpus, parse_time, print_json, run, short, since, table

COLUMNS = ("POS", "ID", "USER", "TEAM", "KIND", "GPUS", "WAITED", "START (EST.)", "REASON")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "queue", parents=[connection_options()], help="show the whole queue: position, reason, expected start",
        description="Every pending workload in the order the scheduler would start them (like squeue).",
    )
    p.add_argument("--me", action="store_true", help="only my workloads (their positions stay those in the whole queue)")
    p.add_argument("--team", help="only this team's workloads")
    add_output_option(p)
    p.set_defaults(func=cmd_queue)


def expected_start_text(value, now: float) -> str:
    """An estimate, said as one: "in 12m (est.)", "now (est.)", or "unknown" when the API gives none."""
    t = parse_time(value)
    if t is None:
        return "unknown"
    return "now (est.)" if t <= now + 1 else f"in {duration(t - now)} (est.)"


def format_queue(entries: list[dict], now: float | None = None, wide: bool = False) -> str:
    now = time.time() if now is None else now
    if not entries:
        return "the queue is empty: nothing waits for GPUs"
    rows = []
    for e in entries:
        rows.append((
            str(e.get("queue_position") or "-"),
            str(e.get("id", "")),
            str(e.get("user", "")),
            str(e.get("team") or ""),
            str(e.get("kind", "")),
            gpus(e.get("gpus")) + (f" {e['gpu_model']}" if e.get("gpu_model") else ""),
            since(e.get("submitted_at"), now),
            expected_start_text(e.get("expected_start"), now),
            short(str(e.get("reason") or ""), None if wide else 60),
        ))
    return table(COLUMNS, rows)


def cmd_queue(args) -> int:
    def action(client):
        entries = client.queue().get("queue", [])
        if args.me:
            me = client.me().get("user")
            entries = [e for e in entries if e.get("user") == me]
        if args.team:
            entries = [e for e in entries if e.get("team") == args.team]
        if args.json:
            print_json(entries)
        else:
            print(format_queue(entries, wide=args.output == "wide"))

    return run(args, action)
