"""Start the pool service: load configuration, wire the parts, serve until SIGTERM.

This module only wires; each part is configured on its own class
(``Inventory``, ``Teams``, ``PoolAuth``, ``SchedulingLoop``, ``JobSupervisor``,
``WorkloadRules``, ``LocalRunner``); see docs/service.md for every option.

Run by JupyterHub as a managed service (``gpupool service``); the hub's
environment (``JUPYTERHUB_SERVICE_URL``, ``JUPYTERHUB_SERVICE_PREFIX``,
``JUPYTERHUB_API_TOKEN``, ...) says where to listen and how to reach the hub.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import signal
import time
import sys
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuthCallbackHandler
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httpserver import HTTPServer
from traitlets import Integer, TraitError, Unicode, default
from traitlets.config import Application

from . import metrics
from .api import events as events_api
from .api import history as history_api
from .api import me as me_api
from .api import metrics as metrics_api
from .api import nodes as nodes_api
from .api import openapi as openapi_api
from .api import pool as pool_api
from .api import queue as queue_api
from .api import teams as teams_api
from .api import workloads as workloads_api
from .api.base import NotFoundHandler
from .auth import PoolAuth
from .context import PoolContext
from .expected import ExpectedStarts
from .inventory import Inventory
from .jobs import JobSupervisor
from .limits import InputLimits
from .loop import SchedulingLoop
from .preemption import Preemption
from .reclaim import IdleReclaim, register_metrics
from .reconcile import ServerReconcile
from .root_page import RootPageHandler
from .runners.local import LocalRunner
from .store import Store
from .store.orm import default_db_url
from .teams import Teams
from .usage_decay import UsageDecay
from .time_limits import TimeLimits
from .usage_history import UsageHistory
from .workloads import WorkloadRules

API_MODULES = (me_api, pool_api, workloads_api, queue_api, teams_api, events_api, history_api, nodes_api, openapi_api, metrics_api)


class OAuthCallbackHandler(HubOAuthCallbackHandler):
    """Finishes the browser's OAuth login with the service's one ``HubOAuth``.

    The OAuth state (next URL, PKCE verifier) lives in memory on the ``HubOAuth``
    that started the login; JupyterHub's handler would use a fresh singleton
    that knows nothing of it and fail with "Code verifier required".
    """

    @property
    def hub_auth(self):
        return self.settings["hub_auth"]

    @hub_auth.setter
    def hub_auth(self, auth):
        pass


class GpuPoolService(Application):
    name = "gpupool-service"
    description = "The GPU pool and quota service of jupyterhub-gpupool (a JupyterHub-managed service)."

    config_file = Unicode(
        "gpupool_service_config.py",
        help="Python configuration file to load (traitlets ``c.Class.option = value``); missing is fine.",
    ).tag(config=True)

    state_dir = Unicode(
        help="Folder for the SQLite database, job logs and job bookkeeping (default: $GPUPOOL_STATE_DIR or ./gpupool-state).",
    ).tag(config=True)

    @default("state_dir")
    def _state_dir_default(self):
        return os.environ.get("GPUPOOL_STATE_DIR") or os.path.abspath("gpupool-state")

    db_url = Unicode(
        help="""SQLAlchemy URL of the database: SQLite by default (in state_dir), or
        ``postgresql+psycopg://user:password@host/db``. Default: $GPUPOOL_DB_URL or SQLite.""",
    ).tag(config=True)

    @default("db_url")
    def _db_url_default(self):
        return os.environ.get("GPUPOOL_DB_URL") or default_db_url(self.state_dir)

    ip = Unicode(help="Address to listen on (default: the host of $JUPYTERHUB_SERVICE_URL, else 127.0.0.1).").tag(config=True)
    port = Integer(0, help="Port to listen on (0: the port of $JUPYTERHUB_SERVICE_URL, else 10101).").tag(config=True)

    runner_class = Unicode(
        "hub_ext.service.runners.local.LocalRunner",
        help="Where batch jobs run: the import path of a ``Runner`` class (local processes by default).",
    ).tag(config=True)

    classes = [Inventory, Teams, PoolAuth, SchedulingLoop, JobSupervisor, WorkloadRules, IdleReclaim, ServerReconcile, LocalRunner,
               InputLimits, Preemption, UsageDecay, TimeLimits, ExpectedStarts, UsageHistory]

    aliases = {"config": "GpuPoolService.config_file", "db-url": "GpuPoolService.db_url", "state-dir": "GpuPoolService.state_dir"}

    @default("log_level")
    def _log_level_default(self):
        return os.environ.get("GPUPOOL_LOG_LEVEL", "INFO").upper()

    # ------------------------------------------------------------ wiring

    def _bind(self) -> tuple[str, int]:
        url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", ""))
        ip = self.ip or url.hostname or "127.0.0.1"
        port = self.port or url.port or 10101
        return ip, port

    def _make_runner(self):
        module_name, _, class_name = self.runner_class.rpartition(".")
        cls = getattr(importlib.import_module(module_name), class_name)
        if cls is LocalRunner or issubclass(cls, LocalRunner):
            return cls(parent=self, state_dir=self.state_dir)
        return cls(parent=self)

    def build(self) -> tuple[PoolContext, web.Application]:
        os.makedirs(self.state_dir, exist_ok=True)
        store = Store(self.db_url)
        store.migrate()
        inventory = Inventory(parent=self)
        teams = Teams(parent=self)
        nodes = inventory.load()
        with store.write() as db:
            inventory.sync(db, nodes)
            teams.seed(db)
        auth = PoolAuth(parent=self)
        runner = self._make_runner()
        loop_holder: dict = {}

        async def on_job_change():
            loop_holder["loop"].poke()

        supervisor = JobSupervisor(store, runner, on_change=on_job_change, parent=self)
        reclaim = IdleReclaim(
            store, threshold_percent=inventory.idle_threshold_percent, on_change=lambda: loop_holder["loop"].poke(), parent=self
        )
        preemption = Preemption(store, hub=reclaim.hub, on_change=lambda: loop_holder["loop"].poke(), parent=self)
        time_limits = TimeLimits(parent=self)
        time_limits.preemption = preemption
        decay = UsageDecay(parent=self)
        loop = SchedulingLoop(store, supervisor, reclaim=reclaim, preemption_rules=preemption, history=decay, time_limits=time_limits, parent=self)
        loop_holder["loop"] = loop
        limits = InputLimits(parent=self)
        pool = PoolContext(
            store=store, loop=loop, jobs=supervisor, rules=WorkloadRules(limits=limits, parent=self), teams=teams, auth=auth,
            inventory=inventory, reclaim=reclaim,
            reconcile=ServerReconcile(store, hub=reclaim.hub, on_change=loop.poke, parent=self),
            limits=limits,
            time_limits=time_limits, expected=ExpectedStarts(store, loop, time_limits=time_limits, parent=self),
            usage=UsageHistory(parent=self),
        )
        loop.estimates = pool.expected.estimate_of
        metrics.register_store(store)
        register_metrics(reclaim)
        return pool, self.make_web_app(pool, auth.make_hub_auth())

    def make_web_app(self, pool: PoolContext, hub_auth) -> web.Application:
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/gpupool/")
        settings = {
            "pool": pool,
            "hub_auth": hub_auth,
            "service_prefix": prefix,
            "cookie_secret": os.urandom(32),
            "log_function": self._log_request,
        }
        routes = []
        for module in API_MODULES:
            routes.extend((url_path_join(prefix, pattern), handler) for pattern, handler in module.handlers)
        routes.extend(self._page_handlers(settings, prefix))
        callback = urlparse(os.environ.get("JUPYTERHUB_OAUTH_CALLBACK_URL", "")).path or url_path_join(prefix, "oauth_callback")
        routes.append((callback, OAuthCallbackHandler))
        routes.append((url_path_join(prefix, "api/.*"), NotFoundHandler))
        if not any(pattern in (prefix, prefix.rstrip("/")) for pattern, *_ in routes):
            routes.append((prefix.rstrip("/") + "/?", RootPageHandler))
        return web.Application(routes, **settings)

    def _page_handlers(self, settings: dict, prefix: str) -> list:
        """Mount the admin page when ``hub_ext.service.pages`` exists (``handlers(settings) -> [(pattern, handler), ...]``)."""
        try:
            pages = importlib.import_module("hub_ext.service.pages")
        except ModuleNotFoundError as e:
            if e.name not in ("hub_ext.service.pages",):
                raise
            return []
        make = getattr(pages, "handlers", None)
        if make is None:
            return []
        out = []
        for route in make(settings):
            pattern, rest = route[0], route[1:]
            if not pattern.startswith("/"):
                pattern = url_path_join(prefix, pattern)
            out.append((pattern, *rest))
        return out

    def _log_request(self, handler):
        status = handler.get_status()
        level = logging.DEBUG if status < 400 else logging.WARNING if status < 500 else logging.ERROR
        self.log.log(level, "%d %s %s %.1fms", status, handler.request.method, handler.request.uri, 1000 * handler.request.request_time())

    # ------------------------------------------------------------ running

    async def serve(self, ready: asyncio.Event | None = None) -> None:
        pool, app = self.build()
        ip, port = self._bind()
        await pool.jobs.reconcile()
        await pool.loop.cycle()
        # Tornado drops bodies far beyond the limit unread; InputLimits answers 413 for the rest.
        server = HTTPServer(app, xheaders=True, max_body_size=2 * pool.limits.max_body_bytes + (1 << 16))
        server.listen(port, ip)
        pool.loop.start()
        pool.reconcile.start()
        pool.expected.start()
        self.log.info("gpupool service listening on http://%s:%d%s (database: %s)", ip, port,
                      app.settings["service_prefix"], pool.store.engine.url.render_as_string(hide_password=True))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        pid_file = os.path.join(self.state_dir, "gpupool-service.pid")
        with open(pid_file, "w") as f:
            f.write(str(os.getpid()))
        if ready is not None:
            ready.set()
        await stop.wait()
        started = time.monotonic()
        self.log.info("gpupool service stopping (running jobs keep running; a restart adopts them)")
        server.stop()
        await pool.reconcile.stop()
        await pool.expected.stop()
        await pool.loop.stop()
        await pool.reclaim.close()
        if pool.loop.preemption_rules is not None:
            await pool.loop.preemption_rules.close()
        await pool.jobs.close()
        pool.store.dispose()
        self.log.info("gpupool service stopped in %.2fs", time.monotonic() - started)

    def initialize(self, argv=None):
        super().initialize(argv)
        if self.config_file and os.path.exists(self.config_file):
            self.load_config_file(self.config_file)
        # Command-line options win over the file.
        if self.cli_config:
            self.update_config(self.cli_config)

    def start(self):
        asyncio.run(self.serve())


def main(argv=None) -> int:
    app = GpuPoolService.instance()
    app.initialize(argv)
    try:
        app.start()
    except TraitError as e:
        # A setting out of range (e.g. a grace of 0): say which, not a traceback.
        print(f"gpupool service: configuration refused: {e}", file=sys.stderr)
        return 2
    return 0
