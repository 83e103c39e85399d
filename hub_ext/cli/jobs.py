"""``gpupool submit / ls / logs / cancel / resize``: batch jobs from a terminal.

Inside JupyterLab the server's own environment authenticates: the spawner sets
``GPUPOOL_URL`` and JupyterHub sets ``JUPYTERHUB_API_TOKEN``, so no extra
login is needed. Outside, pass ``--url``/``--token`` or set the same variables.

Every command prints a table for people; ``--json`` prints the service's own
JSON for scripts. Errors print the service's message and exit 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from hub_ext.client import PoolError

from .common import add_output_option, connection_options, parse_time, print_json, run, short, since, table

from hub_ext.states import ACTIVE_STATES


def register(subparsers) -> None:
    common = connection_options()

    p = subparsers.add_parser(
        "submit",
        parents=[common],
        help="submit a batch job to the GPU pool",
        description="Submit COMMAND as a batch job. It queues until the pool can give it its GPUs, "
        "then runs in your home with CUDA_VISIBLE_DEVICES set. Example: "
        "gpupool submit --gpus 2 -- python train.py --epochs 10",
    )
    p.add_argument("--gpus", type=_gpu_count, required=True, help="GPUs to start with (a fraction like 0.5 or a whole number)")
    p.add_argument("--min", dest="min_gpus", type=int, help="elastic job: fewest GPUs it can run on")
    p.add_argument("--max", dest="max_gpus", type=int, help="elastic job: most GPUs it can use")
    p.add_argument("--team", help="team to charge (default: your team)")
    p.add_argument("--gpu-model", help="require this GPU model")
    p.add_argument("--name", help="a name to recognise the job by (default: the command)")
    p.add_argument("--priority", type=int, help="higher runs first within your team")
    p.add_argument(
        "--time", dest="time_limit", type=parse_duration, metavar="LIMIT",
        help="time limit: the pool stops the job after running this long (e.g. 45m, 2h, 1d, 1h30m or 1:30:00; "
        "default: your team's default, if any)",
    )
    p.add_argument("--workdir", help="directory the job runs in (default: the current directory)")
    p.add_argument("job_command", nargs=argparse.REMAINDER, metavar="-- COMMAND", help="the command to run")
    p.set_defaults(func=cmd_submit)

    p = subparsers.add_parser("ls", parents=[common], help="list your workloads (jobs and sessions)")
    p.add_argument("-a", "--all", action="store_true", help="include finished workloads")
    p.add_argument("--state", help="only workloads in this state")
    p.add_argument("--user", help="admins: only this user's workloads")
    add_output_option(p)
    p.set_defaults(func=cmd_ls)

    p = subparsers.add_parser("logs", parents=[common], help="print a batch job's output")
    p.add_argument("id", help="workload id (from gpupool ls)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new output until the job ends")
    p.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_logs)

    p = subparsers.add_parser("cancel", parents=[common], help="cancel a queued workload or stop a running one")
    p.add_argument("ids", nargs="+", metavar="id", help="workload id(s)")
    p.set_defaults(func=cmd_cancel)

    p = subparsers.add_parser("resize", parents=[common], help="change an elastic job's GPU count")
    p.add_argument("id", help="workload id")
    p.add_argument("gpus", type=int, help="new GPU count (within the job's --min/--max)")
    p.set_defaults(func=cmd_resize)


def _gpu_count(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of GPUs") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("a job needs more than 0 GPUs")
    if value >= 1 and value != int(value):
        raise argparse.ArgumentTypeError(f"{text}: above 1, ask for whole GPUs")
    return int(value) if value >= 1 else value


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``45m``, ``2h``, ``1d``, ``1h30m``, ``90s``, ``1:30:00`` (h:mm:ss) or ``30:00`` (m:ss) -> seconds."""
    import re

    t = text.strip().lower()
    if ":" in t:
        parts = t.split(":")
        if len(parts) > 3 or not all(p.isdigit() for p in parts):
            raise argparse.ArgumentTypeError(f"'{text}' is not a duration (try 2h, 45m, 1d or 1:30:00)")
        seconds = 0.0
        for p in parts:
            seconds = seconds * 60 + int(p)
    else:
        found = re.fullmatch(r"(?:(\d+(?:\.\d+)?)\s*([smhd])\s*)+", t)
        if not found:
            hint = " (say the unit: 90m, 2h, 1d)" if re.fullmatch(r"\d+(\.\d+)?", t) else " (try 2h, 45m, 1d or 1:30:00)"
            raise argparse.ArgumentTypeError(f"'{text}' is not a duration{hint}")
        seconds = sum(float(n) * _UNITS[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)\s*([smhd])", t))
    if seconds <= 0:
        raise argparse.ArgumentTypeError("a time limit must be more than 0")
    return seconds


_run = run
_print_json = print_json


# ---------------------------------------------------------------- submit


def cmd_submit(args) -> int:
    command = list(args.job_command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print("gpupool submit: give the command to run after --, e.g. gpupool submit --gpus 1 -- python train.py", file=sys.stderr)
        return 2
    if (args.min_gpus is None) != (args.max_gpus is None):
        print("gpupool submit: an elastic job needs both --min and --max", file=sys.stderr)
        return 2
    spec = {
        "kind": "job",
        "name": args.name or _default_name(command),
        "command": command,
        "gpus": args.gpus,
        "min_gpus": args.min_gpus,
        "max_gpus": args.max_gpus,
        "team": args.team,
        "gpu_model": args.gpu_model,
        "priority": args.priority,
        "workdir": os.path.abspath(args.workdir or os.getcwd()),
    }
    if args.time_limit is not None:
        spec["time_limit_s"] = args.time_limit

    def action(client):
        workload = client.submit(spec)
        if args.json:
            _print_json(workload)
        else:
            print(f"submitted {workload['id']} ({_gpus_text(workload)}): {workload.get('state')}"
                  + (f", {workload['reason']}" if workload.get("reason") else ""))
            print(f"  follow it with: gpupool logs -f {workload['id']}")

    return _run(args, action)


def _default_name(command: list[str]) -> str:
    # "python train.py --epochs 3" -> "train.py": the script says more than the interpreter.
    words = [os.path.basename(w) for w in command if not w.startswith("-")]
    interpreters = {"python", "python3", "bash", "sh", "env", "torchrun", "accelerate"}
    useful = [w for w in words if w not in interpreters and "=" not in w]
    return (useful or words or ["job"])[0][:60]


# ---------------------------------------------------------------- ls


def cmd_ls(args) -> int:
    def action(client):
        workloads = client.workloads(user=args.user, state=args.state)
        if isinstance(workloads, dict):  # tolerate {"workloads": [...]}
            workloads = workloads.get("workloads", [])
        if not args.all and not args.state:
            workloads = [w for w in workloads if w.get("state") in ACTIVE_STATES]
        if args.json:
            _print_json(workloads)
        else:
            print(format_table(workloads, wide=args.output == "wide"))

    return _run(args, action)


COLUMNS = ("ID", "NAME", "KIND", "USER", "TEAM", "GPUS", "GPU-H", "STATE", "WHERE / WHY", "AGE", "EXPECTED")


def format_table(workloads: list[dict], now: float | None = None, wide: bool = False) -> str:
    """``wide``: names and reasons whole (``gpupool ls -o wide``)."""
    if not workloads:
        return "no workloads (gpupool ls -a includes finished ones)"
    rows = []
    for w in workloads:
        rows.append(
            (
                str(w.get("id", "")),
                short(str(w.get("name") or ""), None if wide else 24),
                str(w.get("kind", "")),
                str(w.get("user", "")),
                str(w.get("team") or ""),
                _gpus_text(w),
                gpu_hours_text(w),
                _state_text(w),
                short(_where_or_why(w, now), None if wide else 48),
                _age(w, now),
                expected_text(w, now),
            )
        )
    return table(COLUMNS, rows)


def _gpus_text(w: dict) -> str:
    alloc = w.get("allocation") or {}
    held = alloc.get("gpus")
    asked = w.get("gpus")
    text = f"{asked:g}" if isinstance(asked, (int, float)) else str(asked)
    if w.get("min_gpus") is not None and w.get("max_gpus") is not None:
        text += f" [{w['min_gpus']}-{w['max_gpus']}]"
    if held is not None and w.get("state") == "running" and abs(float(held) - float(asked or 0)) > 1e-9:
        text += f" (holds {float(held):g})"
    return text


def gpu_hours_text(w: dict) -> str:
    """GPU-hours held so far over all its runs (the workload's attained service); "-" from a pool that does not say."""
    seconds = w.get("attained_gpu_s")
    if not isinstance(seconds, (int, float)):
        return "-"
    hours = seconds / 3600
    if hours <= 0:
        return "0"
    if hours < 0.01:
        return "<0.01"
    return f"{hours:.2f}" if hours < 100 else f"{hours:.0f}"


def _state_text(w: dict) -> str:
    state = str(w.get("state", ""))
    if state == "pending" and w.get("queue_position"):
        return f"pending #{w['queue_position']}"
    if state in ("completed", "failed") and w.get("exit_code") is not None:
        return f"{state} ({w['exit_code']})"
    return state


def _where_or_why(w: dict, now: float | None = None) -> str:
    if w.get("state") == "running":
        shares = (w.get("allocation") or {}).get("shares") or []
        by_node: dict[str, list[str]] = {}
        for s in shares:
            by_node.setdefault(str(s.get("node")), []).append(str(s.get("index")))
        where = " ".join(f"{node}:{','.join(idx)}" for node, idx in by_node.items())
        if w.get("preemptions"):
            where += f" (preempted {w['preemptions']}x)"
        notice = _preempting_text(w, now)
        return f"{notice}, on {where}" if notice else where
    return str(w.get("reason") or "")


def _preempting_text(w: dict, now: float | None = None) -> str | None:
    """"preempting in 2 min" for a workload preempted with notice."""
    import time

    at = _parse_time(w.get("preempt_at"))
    if at is None:
        return None
    left = max(0.0, at - (time.time() if now is None else now))
    if left >= 90:
        return f"preempting in {round(left / 60):g} min"
    return f"preempting in {int(left)} s"


_parse_time = parse_time


def expected_text(w: dict, now: float | None = None) -> str:
    """EXPECTED: when a pending workload is expected to start (an estimate), or "unknown"."""
    if w.get("state") != "pending":
        return ""
    at = _parse_time(w.get("expected_start"))
    if at is None:
        return "unknown"
    seconds = at - (now or time.time())
    if seconds < 60:
        return "now (est.)"
    return f"in ~{_span(seconds)} (est.)"


def _span(seconds: float) -> str:
    if seconds < 7200:
        return f"{max(1, round(seconds / 60))}m"
    if seconds < 172800:
        return f"{round(seconds / 3600)}h"
    return f"{round(seconds / 86400)}d"


def _age(w: dict, now: float | None) -> str:
    return since(w.get("submitted_at"), now)


# ---------------------------------------------------------------- logs


def cmd_logs(args) -> int:
    def action(client):
        offset = 0
        while True:
            chunk = client.logs(args.id, offset=offset)
            text = chunk.get("text", "") if isinstance(chunk, dict) else str(chunk or "")
            new_offset = chunk.get("offset") if isinstance(chunk, dict) else None
            if args.json and not args.follow:
                _print_json(chunk)
                return 0
            if text:
                sys.stdout.write(text)
                sys.stdout.flush()
            offset = int(new_offset) if new_offset is not None else offset + len(text.encode())
            if not args.follow:
                return 0
            if not text:
                state = client.workload(args.id).get("state")
                if state not in ACTIVE_STATES:
                    # One last read: output written just before the end.
                    last = client.logs(args.id, offset=offset)
                    sys.stdout.write(last.get("text", "") if isinstance(last, dict) else "")
                    sys.stdout.flush()
                    return 0
                time.sleep(args.interval)

    return _run(args, action)


# ---------------------------------------------------------------- cancel, resize


def cmd_cancel(args) -> int:
    def action(client):
        failed = 0
        results = []
        for workload_id in args.ids:
            try:
                result = client.cancel(workload_id)
            except PoolError as e:
                failed += 1
                print(f"gpupool: {workload_id}: {e}", file=sys.stderr)
                continue
            results.append(result if isinstance(result, dict) else {"id": workload_id})
            if not args.json:
                state = result.get("state") if isinstance(result, dict) else None
                print(f"{workload_id}: " + (f"{state}" if state else "cancelled"))
        if args.json:
            _print_json(results)
        return 1 if failed else 0

    return _run(args, action)


def cmd_resize(args) -> int:
    def action(client):
        result = client.resize(args.id, args.gpus)
        if args.json:
            _print_json(result)
        else:
            reason = result.get("reason") if isinstance(result, dict) else None
            print(f"{args.id}: resize to {args.gpus} GPUs requested" + (f" ({reason})" if reason else ""))

    return _run(args, action)

