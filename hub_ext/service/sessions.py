"""Restarting a notebook session with other GPUs: the server is stopped and started again through the hub.

The user's files stay where they are (the home directory is the server's, not
the workload's); only the GPUs change. The spawner gives the old session's GPUs
back when its server stops and asks the pool for the new number when it starts,
so the pool's usual rules (quota, queue) apply to the new size.
"""

from __future__ import annotations

import asyncio
import logging
import math

from sqlalchemy.orm import Session

from . import events
from .errors import ApiError, bad_request, conflict
from .hub import HubClient, HubError, server_name_of
from .store import WorkloadRow

log = logging.getLogger(__name__)


def check_restart(db: Session, w: WorkloadRow, gpus, by: str) -> tuple[str, str]:
    """Refuse a restart that cannot work; return (GPUs as the spawn option, the server's name); records the request."""
    if w.kind != "session":
        raise conflict(f"{w.id} is a batch job; only notebook sessions are restarted with other GPUs (resubmit a job instead)")
    if w.state not in ("running", "pending"):
        raise conflict(f"{w.id} is {w.state}; only a running or waiting session can be restarted")
    server = server_name_of(w.name)
    if server is None:
        raise conflict(f"{w.id} was not started by the hub's spawner, so there is no server to restart")
    if isinstance(gpus, bool) or not isinstance(gpus, (int, float)) or not math.isfinite(gpus) or gpus < 0:
        raise bad_request("gpus must be 0 or more: a whole number of GPUs, or a fraction below 1 to share a card")
    if gpus > 1 and not float(gpus).is_integer():
        raise bad_request("more than one GPU must be a whole number")
    option = str(int(gpus)) if float(gpus).is_integer() else str(gpus)
    events.record(db, "restart-requested", f"restart with {option} GPU{'s' if gpus != 1 else ''} asked by {by}; files are kept", w,
                  details={"gpus": gpus, "by": by, "from": w.gpus})
    return option, server


async def restart_server(hub: HubClient, user: str, server: str, user_options: dict, stop_timeout: float) -> None:
    """Stop the server, wait until the hub says it stopped, start it with the new options."""
    try:
        if not await hub.stop(user, server):
            log.warning("%s's server %r was not running; nothing to restart", user, server)
            return
        if not await hub.wait_stopped(user, server, stop_timeout):
            log.warning("%s's server %r did not stop within %gs; not restarting it", user, server, stop_timeout)
            return
        await hub.start(user, server, user_options)
        log.info("restarted %s's server %r with %s", user, server, user_options)
    except HubError as e:
        log.error("could not restart %s's server %r: %s", user, server, e)


def start_restart(pool, user: str, server: str, user_options: dict) -> asyncio.Task:
    r = pool.reclaim
    if not r.hub_api_url or not r.hub_api_token:
        raise ApiError(503, "the pool service has no JupyterHub API token to restart servers with (IdleReclaim.hub_api_token)")
    hub = HubClient(r.hub_api_url, r.hub_api_token)
    return asyncio.ensure_future(restart_server(hub, user, server, user_options, r.server_stop_timeout_seconds))
