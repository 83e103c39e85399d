"""A stop of a local server starts with SIGTERM (``interrupt_first`` off): a server that a SIGINT did not
stop (Jupyter Server without a terminal takes it as a KeyboardInterrupt, which a request handler can
swallow) no longer holds its GPUs for the whole ``interrupt_timeout``."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

from spawner.local import SimpleGpuLocalProcessSpawner

# Stands in for a server whose SIGINT was swallowed: it ignores SIGINT and exits on SIGTERM.
SWALLOWS_SIGINT = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); print('up', flush=True); time.sleep(600)"


def stop_time(**config) -> tuple[float, int]:
    proc = subprocess.Popen([sys.executable, "-c", SWALLOWS_SIGINT], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "up"  # (its SIGINT handler is set)
    spawner = SimpleGpuLocalProcessSpawner(interrupt_timeout=4, term_timeout=5, **config)
    spawner.proc, spawner.pid = proc, proc.pid
    t = time.monotonic()
    asyncio.run(spawner.stop())
    return time.monotonic() - t, proc.wait(5)


def test_a_stop_begins_with_sigterm_and_does_not_wait_out_the_interrupt_timeout():
    took, status = stop_time()
    assert status == -15 and took < 2, (took, status)  # ended by SIGTERM, long before interrupt_timeout (4 s) was out


def test_interrupt_first_is_jupyterhubs_order():
    took, status = stop_time(interrupt_first=True)
    assert status == -15 and took >= 3, (took, status)  # SIGINT ignored: SIGTERM came only after interrupt_timeout (4 s, less its backoff jitter)
