"""``gpupool service``: run the pool service (normally started by JupyterHub as a managed service)."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "service",
        help="run the GPU pool service",
        description="Run the pool and quota service. JupyterHub starts it as the managed service 'gpupool'; "
        "see docs/service.md for its configuration.",
    )
    p.add_argument("--config", help="configuration file (traitlets, Python); default: ./gpupool_service_config.py if present")
    p.add_argument("--db-url", help="database URL (default: SQLite in the state folder)")
    p.add_argument("--state-dir", help="folder for the SQLite database and job logs")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="Class.option=value",
        help="any other option (repeatable), e.g. --set SchedulingLoop.tick_seconds=2",
    )
    p.add_argument("--help-all", action="store_true", help="list every option of the service, with its help, and exit")
    p.set_defaults(func=run)


def run(args) -> int:
    from hub_ext.service.app import main

    argv = []
    if args.config:
        argv.append(f"--GpuPoolService.config_file={args.config}")
    if args.db_url:
        argv.append(f"--GpuPoolService.db_url={args.db_url}")
    if args.state_dir:
        argv.append(f"--GpuPoolService.state_dir={args.state_dir}")
    argv.extend(f"--{item}" for item in args.set)
    if args.help_all:
        argv.append("--help-all")
    return main(argv)
