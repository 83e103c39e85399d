"""The admin page handler: an OAuth-protected shell for the page's script."""

from __future__ import annotations

import os

from jupyterhub.services.auth import HubOAuthenticated
from tornado import template, web

from ..auth import Identity, identity_from_model

_TEMPLATES = template.Loader(os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates"))


class AdminPageHandler(HubOAuthenticated, web.RequestHandler):
    """``<prefix>admin``: GPU pool admins see the page; anyone else gets a plain 403 page.

    Someone not logged in is sent through the hub's OAuth login and comes back here.
    """

    def initialize(self, prefix: str):
        self.prefix = prefix

    @property
    def hub_auth(self):
        # The service's one HubOAuth (the API handlers use the same), so the XSRF
        # token this page carries is the one the API checks.
        return self.settings["hub_auth"]

    @hub_auth.setter
    def hub_auth(self, auth):
        pass

    def get_current_user(self):
        return getattr(self, "_cached_hub_user", None)

    async def prepare(self):
        self.model = await self.hub_auth.get_user(self, sync=False)

    async def get(self):
        if not self.model:
            self.redirect(self.get_login_url())
            return
        me: Identity = identity_from_model(self.model)
        if not self.hub_auth.check_scopes(self.hub_auth.access_scopes, self.model) or not me.admin:
            self.set_status(403)
            self.finish(_TEMPLATES.load("forbidden.html").generate(user=me.name, hub_home=self._hub_home()))
            return
        self.set_header("Cache-Control", "no-store")
        xsrf = self.xsrf_token
        self.finish(
            _TEMPLATES.load("admin.html").generate(
                user=me.name,
                prefix=self.prefix,
                static=self.prefix + "admin/static/",
                xsrf=xsrf.decode("ascii") if isinstance(xsrf, bytes) else xsrf,
                hub_home=self._hub_home(),
                # A node whose agent has not reported for this long is shown as silent: the same
                # age after which idle reclaim stops trusting its readings.
                silent_after=int(self._stale_after()),
            )
        )

    def _stale_after(self) -> float:
        pool = self.settings.get("pool")
        reclaim = getattr(pool, "reclaim", None)
        return getattr(reclaim, "stale_after_seconds", 120.0)

    def _hub_home(self) -> str:
        # JUPYTERHUB_BASE_URL is the hub's public prefix ("/" by default); the service gets it from the hub.
        return os.environ.get("JUPYTERHUB_BASE_URL", "/").rstrip("/") + "/hub/home"


class StaticHandler(web.StaticFileHandler):
    """The page's script and stylesheet: no data in them, so no login needed."""

    def set_extra_headers(self, path):
        self.set_header("Cache-Control", "no-cache")
