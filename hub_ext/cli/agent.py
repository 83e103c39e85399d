"""``gpupool agent``: run the node agent (or read the GPUs once and print them)."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading

from ..agent import DEFAULT_INTERVAL_S, NodeAgent
from ..agent.agent import pool_gpus
from ..client import PoolClient, PoolError, PoolForbidden
from ..gpus import BACKENDS, GpuBackendUnavailable, GpuInfo, open_backend
from ..gpus.simulated import ScriptError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "agent",
        help="report this node's GPU readings to the pool service",
        description="Read every GPU of this node (NVML, or a simulated script) and report utilisation, "
        "memory and processes to the pool service on an interval. See docs/node-agent.md.",
    )
    p.add_argument("--url", default=None, help="pool service URL (default: $GPUPOOL_URL)")
    p.add_argument("--token", default=None, help="API token with the custom:gpupool:agent scope (default: $GPUPOOL_TOKEN, then $JUPYTERHUB_API_TOKEN)")
    p.add_argument("--node", default=None, help="this node's name in the pool (default: the host name)")
    p.add_argument("--backend", choices=BACKENDS, default="nvml", help="where GPU facts come from (default: nvml)")
    p.add_argument("--script", default=None, help="utilisation script (JSON) for --backend simulated")
    p.add_argument("--interval", type=float, default=DEFAULT_INTERVAL_S, help=f"seconds between readings (default: {DEFAULT_INTERVAL_S:g})")
    p.add_argument("--once", action="store_true", help="read (and report) once, then exit")
    p.add_argument("--print", dest="print_", action="store_true", help="print each reading as JSON on stdout; without a service URL, only print")
    p.set_defaults(func=run)


def _client(args) -> PoolClient | None:
    if not (args.url or os.environ.get("GPUPOOL_URL")):
        return None
    # GPUPOOL_TOKEN first: an agent pod or unit has its own token, and a
    # JUPYTERHUB_API_TOKEN it inherits (e.g. beside the hub) is the wrong one.
    # Retry a restarting service for at most one interval: the next reading is fresher than this one.
    retry = None if "GPUPOOL_RETRY_SECONDS" in os.environ else args.interval
    return PoolClient(
        args.url, args.token or os.environ.get("GPUPOOL_TOKEN"), retry_seconds=retry,
        on_retry=lambda message: logging.getLogger("gpupool.agent").warning("%s", message),
    )


def _declared_gpus(client: PoolClient | None, node: str) -> tuple[GpuInfo, ...] | None:
    """The cards the service declares for ``node``, so a simulated script need not repeat them."""
    if client is None:
        return None
    try:
        pool = client.pool()
    except PoolForbidden:
        logging.getLogger("gpupool.agent").warning(
            "this token cannot read the pool (it needs custom:gpupool:use besides custom:gpupool:agent): "
            "the GPU script must declare the node's GPUs itself"
        )
        return None
    gpus = [g for g in pool_gpus(pool) if g.get("node") == node]
    if not gpus:
        return None
    return tuple(GpuInfo(index=g["index"], uuid=g["uuid"], model=g["model"], memory_mib=g["memory_mib"]) for g in sorted(gpus, key=lambda g: g["index"]))


def run(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s gpupool-agent %(levelname)s %(message)s")
    node = args.node or socket.gethostname()
    try:
        client = _client(args)
    except PoolError as e:
        print(f"gpupool agent: {e}", file=sys.stderr)
        return 2
    if client is None and not args.print_:
        print("gpupool agent: no pool service URL: pass --url or set GPUPOOL_URL (or use --print to only print readings)", file=sys.stderr)
        return 2
    try:
        gpus = _declared_gpus(client, node) if args.backend == "simulated" else None
        backend = open_backend(args.backend, script_path=args.script, node=node, gpus=gpus)
    except (GpuBackendUnavailable, ScriptError, PoolError) as e:
        print(f"gpupool agent: {e}", file=sys.stderr)
        return 1
    try:
        agent = NodeAgent(backend, node, client, interval_s=args.interval)
    except ValueError as e:
        print(f"gpupool agent: {e}", file=sys.stderr)
        return 2

    def show(payload):
        if args.print_:
            print(json.dumps(payload, indent=2), flush=True)

    with backend:
        try:
            if args.once:
                payload = agent.collect()
                show(payload)
                if client is not None:
                    agent.report(payload)
                return 0
            stop = threading.Event()
            # SIGTERM from the hub, systemd or the kubelet: finish the current report and exit.
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            try:
                agent.run(stop, on_payload=show)
            except KeyboardInterrupt:
                pass
            return 0
        except PoolError as e:
            print(f"gpupool agent: {e}", file=sys.stderr)
            return 1
