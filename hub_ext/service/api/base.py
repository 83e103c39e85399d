"""What every API handler shares: who is calling, what they may do, JSON in and out.

Each handler class declares ``scopes``: for each HTTP method, which of
"use", "admin" or "agent" a caller needs. ``prepare`` refuses everyone else
before the handler runs (401 without a valid token or session, 403 without
the scope), so no handler can forget the check; the tests walk the OpenAPI
document to prove it for every endpoint.
"""

from __future__ import annotations

import json
from typing import Any

from jupyterhub.services.auth import HubOAuthenticated
from tornado import web

from ..auth import Identity, identity_from_model
from ..context import PoolContext
from ..errors import ApiError, forbidden
from ..store import WorkloadRow
from ..views import workload_view

SCOPE_MESSAGES = {
    "use": "this needs the custom:gpupool:use scope (ask an admin to give you the gpupool-user role)",
    "admin": "only gpupool admins may do this (custom:gpupool:admin scope)",
    "agent": "only node agents may report readings (custom:gpupool:agent scope)",
    "metrics": "reading the metrics needs the custom:gpupool:metrics scope (or admin); see docs/service.md",
}


class APIHandler(HubOAuthenticated, web.RequestHandler):
    #: HTTP method -> "use" | "admin" | "agent"
    scopes: dict[str, str] = {}

    @property
    def pool(self) -> PoolContext:
        return self.settings["pool"]

    @property
    def hub_auth(self):
        return self.settings["hub_auth"]

    @hub_auth.setter
    def hub_auth(self, auth):
        pass  # one HubOAuth for the whole service, set at start

    def get_login_url(self):
        # An API never redirects to a login page: it answers 401 with a message.
        raise web.HTTPError(401)

    def set_default_headers(self):
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")

    def check_xsrf_cookie(self):
        return self.hub_auth.check_xsrf_cookie(self)

    async def prepare(self):
        needed = self.scopes.get(self.request.method)
        if needed is None:
            raise ApiError(405, f"{self.request.method} is not supported here")
        model = await self.hub_auth.get_user(self, sync=False)
        if not model and self.request.method == "GET" and "text/html" in self.request.headers.get("Accept", ""):
            # A person opened an API URL in a browser: log in through the hub, then come back.
            self.redirect(HubOAuthenticated.get_login_url(self))
            return
        if not model:
            raise ApiError(
                401,
                "authentication required: send 'Authorization: token <your JupyterHub API token>' or log in through the hub",
            )
        if not self.hub_auth.check_scopes(self.hub_auth.access_scopes, model):
            raise forbidden(f"{model['name']} may not access the gpupool service (needs access:services!service=gpupool)")
        me = identity_from_model(model, self.pool.auth.admin_users)
        allowed = {"use": me.can_use, "admin": me.admin, "agent": me.agent, "metrics": me.metrics}[needed]
        if not allowed:
            raise forbidden(SCOPE_MESSAGES[needed])
        self.me: Identity = me
        self.check_query_arguments()

    def check_query_arguments(self) -> None:
        """Refuse query arguments the OpenAPI document does not list for this operation.

        A misspelt filter (``?stat=running``) must not silently return everything: the
        document is the list of what each operation takes, so a new argument is documented
        there first.
        """
        from .openapi import query_parameters

        known = query_parameters(self.settings.get("service_prefix", "/"), self.request.path, self.request.method)
        if known is None:
            return  # not an operation of the document (pages, metrics)
        unknown = sorted(set(self.request.query_arguments) - known - {"token", "_xsrf"})
        if unknown:
            takes = ", ".join(sorted(known)) or "none"
            raise ApiError(400, f"unknown query argument(s): {', '.join(u[:40] for u in unknown[:5])}; this takes: {takes}")

    def get_current_user(self):
        return getattr(self, "_cached_hub_user", None)

    # ------------------------------------------------------------ helpers

    def json_body(self) -> Any:
        """The body's JSON value, within ``InputLimits`` (size, depth, strict numbers, no NUL)."""
        raw = self.request.body
        if not raw:
            raise ApiError(400, "the request needs a JSON body")
        return self.pool.limits.parse_body(raw)

    def json_object(self) -> dict:
        body = self.json_body()
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object")
        return body

    def write_json(self, value: Any, status: int = 200) -> None:
        # Strict JSON only: a NaN or Infinity that slipped into the database fails here,
        # loudly, rather than breaking every client that parses the answer.
        text = json.dumps(value, allow_nan=False)
        self.set_status(status)
        self.finish(text)

    def workload_view(self, w: WorkloadRow, idle_seconds: float | None = None) -> dict:
        """views.workload_view with this service's queue (positions and reasons of pending work)."""
        return workload_view(w, idle_seconds, queue=self.pool.loop.queue)

    def check_owner(self, w: WorkloadRow) -> None:
        """404, not 403, for someone else's workload: its existence is not theirs to know."""
        if not self.me.may_act_on(w.user):
            raise ApiError(404, f"no workload {w.id!r} of yours")

    # ------------------------------------------------------------ errors

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, ApiError):
            if not self._finished:
                self.set_status(e.status)
                self.finish(json.dumps({"error": e.message}))
            return
        super()._handle_request_exception(e)

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = self._reason
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        if status_code == 401:
            message = "authentication required: send 'Authorization: token <your JupyterHub API token>' or log in through the hub"
        elif status_code >= 500:
            message = "the pool service failed on this request; the error is in its log"
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps({"error": message}))


class NotFoundHandler(APIHandler):
    """Any other path under api/: a JSON 404 (after authentication, so nothing is revealed)."""

    scopes = {m: "use" for m in ("GET", "POST", "PUT", "PATCH", "DELETE")}

    def _not_found(self, *args):
        raise ApiError(404, f"no such API endpoint: {self.request.method} {self.request.path}")

    get = post = put = patch = delete = _not_found
