"""The hub admin page of the GPU pool: ``<service prefix>admin``.

Served by the pool service, behind JupyterHub OAuth, for callers holding
``custom:gpupool:admin`` only. The page is a shell; its script reads and
changes everything through the service's own REST API (with the browser's
OAuth cookie and the XSRF token the page carries), so the page and the API
can never disagree about what the pool looks like or who may change it.

``handlers(settings)`` returns the tornado routes; the service mounts them.
``HUB_TEMPLATES`` is a folder for ``c.JupyterHub.template_paths`` that adds
a "GPU pool" link to the hub's navigation bar for admins.
"""

from __future__ import annotations

import os

from .admin import AdminPageHandler, StaticHandler

HERE = os.path.dirname(os.path.abspath(__file__))
STATIC = os.path.join(HERE, "static")
TEMPLATES = os.path.join(HERE, "templates")

#: Put in ``c.JupyterHub.template_paths``: the hub's pages get a "GPU pool" link for admins.
HUB_TEMPLATES = os.path.join(HERE, "hub_templates")


def service_prefix(settings) -> str:
    """The service's URL prefix, e.g. ``/services/gpupool/``."""
    prefix = None
    if isinstance(settings, dict):
        prefix = settings.get("service_prefix")
    prefix = prefix or os.environ.get("JUPYTERHUB_SERVICE_PREFIX") or "/services/gpupool/"
    return prefix if prefix.endswith("/") else prefix + "/"


def handlers(settings) -> list:
    """Routes of the admin page, under the service's prefix."""
    prefix = service_prefix(settings)
    return [
        (prefix + "admin/?", AdminPageHandler, {"prefix": prefix}),
        (prefix + r"admin/static/(.*)", StaticHandler, {"path": STATIC}),
    ]


__all__ = ["handlers", "HUB_TEMPLATES", "AdminPageHandler"]
