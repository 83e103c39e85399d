"""The admin page handler: an OAuth-protected shell for the page's script."""

from __future__ import annotations

import os

from jupyterhub.services.auth import HubOAuthenticated
from tornado import template, web

from ..auth import identity_from_model

_TEMPLATES = template.Loader(os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates"))


class AdminPageHandler(HubOAuthenticated, web.RequestHandler):
    """``<prefix>admin``: GPU pool admins see the page; anyone else gets a plain 403."""

    def initialize(self, prefix: str):
        self.prefix = prefix

    @web.authenticated
    def get(self):
        identity = identity_from_model(self.current_user)
        if not identity.admin:
            self.set_status(403)
            self.finish(
                _TEMPLATES.load("forbidden.html").generate(user=identity.name, hub_home=self._hub_home())
            )
            return
        self.set_header("Cache-Control", "no-store")
        self.finish(
            _TEMPLATES.load("admin.html").generate(
                user=identity.name,
                prefix=self.prefix,
                static=self.prefix + "admin/static/",
                xsrf=self.xsrf_token.decode("ascii") if isinstance(self.xsrf_token, bytes) else self.xsrf_token,
                hub_home=self._hub_home(),
            )
        )

    def _hub_home(self) -> str:
        hub_prefix = os.environ.get("JUPYTERHUB_BASE_URL", "/")
        return hub_prefix.rstrip("/") + "/hub/home"


class StaticHandler(web.StaticFileHandler):
    """The page's script and stylesheet: no data in them, so no login needed."""

    def set_extra_headers(self, path):
        self.set_header("Cache-Control", "no-cache")
