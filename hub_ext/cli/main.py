"""Entry point of ``gpupool``: each sub-command lives in its own module.

A module in ``SUBCOMMAND_MODULES`` defines ``register(subparsers)``, which
adds its sub-command(s) with ``set_defaults(func=...)``; ``func(args)``
returns the exit status.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMAND_MODULES = (
    "hub_ext.cli.simulate",  # gpupool simulate
    "hub_ext.cli.jobs",  # gpupool submit / ls / logs / cancel / resize
    "hub_ext.cli.queue",  # gpupool queue
    "hub_ext.cli.pool",  # gpupool pool
    "hub_ext.cli.usage",  # gpupool usage
    "hub_ext.cli.service",  # gpupool service (the pool service process)
    "hub_ext.cli.agent",  # gpupool agent (the node agent)
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gpupool", description="GPU pooling for JupyterHub.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # that sub-command is not part of this install
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
