"""Local process spawners that take their GPUs from the pool (the embedded default).

- ``GpuLocalProcessSpawner``: JupyterHub's ``LocalProcessSpawner`` (servers run
  as the users' system accounts).
- ``SimpleGpuLocalProcessSpawner``: like JupyterHub's
  ``SimpleLocalProcessSpawner``, servers run as the hub's own account with
  homes under ``home_dir_template``; for the demo and tests only, where no
  system users exist.

Both show the GPU spawn form, wait in the pool's queue (``PoolAllocationMixin``)
and start the server with its GPUs in ``CUDA_VISIBLE_DEVICES``.

The local spawners start servers on the hub's machine, so on real hardware
the pool they draw from should be that machine's GPUs (one node). A declared
(simulated) pool may have any shape.
"""

from __future__ import annotations

import json
import os
import shutil

from jupyterhub.spawner import LocalProcessSpawner, SimpleLocalProcessSpawner
from traitlets import Bool, List, Unicode, default
from traitlets.config import LoggingConfigurable

from .pool_allocation import PoolAllocationMixin


def _default_terminal_shell() -> list[str]:
    shell = os.environ.get("SHELL") or shutil.which("bash") or "sh"
    return [shell, "-i"]


class _LocalGpuEnv(LoggingConfigurable):
    """The pool's environment goes in after the user's, so a server cannot be started on other GPUs."""

    terminal_shell_command = List(
        Unicode(),
        help="""The shell of JupyterLab's terminals in these servers (``ServerApp.terminado_settings``).

        By default an interactive, non-login shell: it keeps the server's PATH, so ``gpupool`` and
        ``python`` of the server's environment are found. Jupyter's own default is a login shell,
        and a login shell on Debian/Ubuntu resets PATH from /etc/profile. Empty: leave it to Jupyter.""",
    ).tag(config=True)

    interrupt_first = Bool(
        False,
        help="""Begin a stop with SIGINT, as JupyterHub's LocalProcessSpawner does (SIGTERM follows after
        ``interrupt_timeout``, 30 s by default). Off (the default): SIGTERM first, then SIGKILL after
        ``term_timeout``.

        A server the hub starts has no terminal, so Jupyter Server leaves SIGINT to Python: a
        KeyboardInterrupt raised wherever the server happens to be. When it lands in a request handler
        (an open JupyterLab tab polls several times a second), the server logs "Uncaught exception" and
        keeps running, and the stop waits the whole ``interrupt_timeout`` with the GPUs still held
        (seen in this project's browser tests: a stop of 32 s). SIGTERM is Jupyter Server's own clean
        shutdown (its kernels are shut down too), handled wherever the server is.""",
    ).tag(config=True)

    async def stop(self, now=False):
        # now=True is LocalProcessSpawner's "SIGTERM first" (it skips only the SIGINT step).
        return await super().stop(now=now or not self.interrupt_first)

    @default("terminal_shell_command")
    def _terminal_shell_default(self):
        return _default_terminal_shell()

    def get_args(self):
        args = super().get_args()
        if self.terminal_shell_command and not any("terminado_settings" in a for a in args):
            args.append("--ServerApp.terminado_settings=" + json.dumps({"shell_command": list(self.terminal_shell_command)}))
        return args

    def get_env(self):
        env = super().get_env()
        env.update(self.allocation_env())
        return env

    async def get_options_form(self):
        if self.options_form:  # an admin's own form wins
            return await super().get_options_form()
        return await self.gpu_options_form()


class GpuLocalProcessSpawner(PoolAllocationMixin, _LocalGpuEnv, LocalProcessSpawner):
    """LocalProcessSpawner whose servers hold GPUs from the gpupool pool."""


class SimpleGpuLocalProcessSpawner(PoolAllocationMixin, _LocalGpuEnv, SimpleLocalProcessSpawner):
    """SimpleLocalProcessSpawner (no system users; demo and tests) with GPUs from the pool."""
