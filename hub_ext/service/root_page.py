"""The service's own URL (where the hub's "Services" menu points): a page for people, JSON for programs.

A browser is logged in through the hub (OAuth) and then sent on: GPU pool admins to the admin
page, everyone else to a short page that says where the pool is shown (the JupyterLab panel,
the ``gpupool`` command) and where the API is documented. A program that asks for JSON (or
does not ask for HTML) gets the short JSON index it always got.
"""

from __future__ import annotations

import html
import json
import os

from jupyterhub.services.auth import HubOAuthenticated
from tornado import web

from .auth import identity_from_model

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>GPU pool</title>
  <style>body {{ font-family: system-ui, sans-serif; margin: 3em auto; max-width: 42em; color: #222; line-height: 1.5; }}</style>
</head>
<body data-xsrf="{xsrf}">
  <h1>GPU pool</h1>
  <p id="gpupool-root">{user}, this is the GPU pool of this JupyterHub. Your GPUs, your jobs and
  the queue are shown in JupyterLab: open the <strong>GPU pool</strong> panel from the left side bar.</p>
  <ul>
    <li><a href="{lab}">Open my JupyterLab</a> (start a server with GPUs from <a href="{spawn}">the spawn page</a>)</li>
    <li>In JupyterLab's terminal: <code>gpupool submit --gpus 1 -- python train.py</code>, <code>gpupool ls</code>,
      <code>gpupool queue</code>, <code>gpupool pool</code></li>
    <li>The REST API: <a href="{openapi}">its OpenAPI document</a> (<code>{api}</code>)</li>
  </ul>
  <p><a href="{hub_home}">Back to JupyterHub</a></p>
</body>
</html>
"""


def wants_html(accept: str | None) -> bool:
    """Browsers ask for text/html first; API clients and ``curl`` do not."""
    if not accept:
        return False
    for part in accept.split(","):
        kind = part.split(";")[0].strip().lower()
        if kind in ("text/html", "application/xhtml+xml"):
            return True
        if kind in ("application/json", "*/*"):
            return False
    return False


class RootPageHandler(HubOAuthenticated, web.RequestHandler):
    @property
    def hub_auth(self):
        return self.settings["hub_auth"]  # the service's one HubOAuth (its OAuth state lives there)

    @hub_auth.setter
    def hub_auth(self, auth):
        pass

    def get_current_user(self):
        return getattr(self, "_cached_hub_user", None)

    async def get(self):
        prefix = self.settings["service_prefix"]
        if not wants_html(self.request.headers.get("Accept")):
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.finish(json.dumps({"service": "gpupool", "api": prefix + "api/", "openapi": prefix + "api/openapi.json",
                                    "admin_page": prefix + "admin/"}))
            return
        model = await self.hub_auth.get_user(self, sync=False)
        if not model:
            self.redirect(self.get_login_url())
            return
        me = identity_from_model(model)
        if me.admin:
            self.redirect(prefix + "admin/")
            return
        hub = os.environ.get("JUPYTERHUB_BASE_URL", "/").rstrip("/") + "/hub/"
        self.set_header("Cache-Control", "no-store")
        # Sets the service's XSRF cookie too: scripts on this page may call the API with it.
        xsrf = self.xsrf_token
        xsrf = xsrf.decode("ascii") if isinstance(xsrf, bytes) else xsrf
        self.finish(PAGE.format(
            xsrf=html.escape(xsrf),
            user=html.escape(me.name), lab=hub + "user-redirect/lab", spawn=hub + "spawn", openapi=prefix + "api/openapi.json",
            api=html.escape(prefix + "api/"), hub_home=hub + "home",
        ))
