"""What every pool sub-command of ``gpupool`` shares: connection options, error handling, tables.

Inside JupyterLab the server's own environment authenticates (``GPUPOOL_URL`` and
``JUPYTERHUB_API_TOKEN``); outside, ``--url``/``--token``. Refusals print the service's own
words and exit 1; ``--json`` prints the service's JSON for scripts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time

from hub_ext.client import PoolClient, PoolError


def connection_options() -> argparse.ArgumentParser:
    """A parent parser: ``--url``, ``--token``, ``--json``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="pool service URL (default: $GPUPOOL_URL)")
    common.add_argument("--token", help="API token (default: $JUPYTERHUB_API_TOKEN)")
    common.add_argument("--json", action="store_true", help="print JSON for scripts instead of a table")
    return common


def add_output_option(p: argparse.ArgumentParser) -> None:
    """``-o wide``: every column, nothing cut (Slurm's ``-o`` habit, kubectl's ``-o wide``)."""
    p.add_argument("-o", "--output", choices=("table", "wide"), default="table",
                   help="wide: print reasons and names whole instead of cutting them to the terminal")


def run(args, action) -> int:
    """Run ``action(client)``; a refused or failed request prints the service's message."""
    try:
        # While the service restarts, say so and keep trying (submits carry an idempotency key).
        client = PoolClient(args.url, args.token, on_retry=lambda message: print(f"gpupool: {message}", file=sys.stderr))
        return action(client) or 0
    except PoolError as e:
        print(f"gpupool: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def print_json(value) -> None:
    json.dump(value, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """Columns padded to their widest cell; trailing spaces trimmed."""
    rows = [tuple(header)] + [tuple(r) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows)


def short(text: str, width: int | None) -> str:
    """``text`` cut to ``width`` with an ellipsis; ``None``: whole (``-o wide``)."""
    if width is None or len(text) <= width:
        return text
    return text[: width - 1] + "…"


def gpus(value) -> str:
    if isinstance(value, (int, float)):
        return f"{value:g}"
    return str(value if value is not None else "")


def parse_time(value) -> float | None:
    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


def duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def since(value, now: float | None = None) -> str:
    """How long ago an ISO time was ("3m"); "" when unknown."""
    t = parse_time(value)
    return "" if t is None else duration((now if now is not None else time.time()) - t)
