"""Who is calling, and what they may do.

Tokens and browser sessions are checked by JupyterHub (``HubOAuth``): the hub
tells us the caller's name, groups and the scopes their token carries. What a
caller may do here follows from three custom scopes (see
docs/roles-and-scopes.md):

- ``custom:gpupool:use``: see the pool and queue, act on one's own workloads;
- ``custom:gpupool:admin``: everything, including other users' workloads,
  teams and quotas, and submitting on behalf of a user (spawners);
- ``custom:gpupool:agent``: report GPU readings for nodes.

Every caller also needs ``access:services!service=gpupool`` (checked by
``HubOAuth.access_scopes``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from urllib.parse import quote

from traitlets import Bool, Float, Set
from traitlets.config import LoggingConfigurable

USE_SCOPE = "custom:gpupool:use"
ADMIN_SCOPE = "custom:gpupool:admin"
AGENT_SCOPE = "custom:gpupool:agent"
METRICS_SCOPE = "custom:gpupool:metrics"

#: The definitions to put in ``c.JupyterHub.custom_scopes``.
CUSTOM_SCOPES = {
    USE_SCOPE: {"description": "Use the GPU pool: see the pool and queue, submit and manage your own workloads."},
    ADMIN_SCOPE: {"description": "Administer the GPU pool: all workloads, teams and quotas; act on behalf of users."},
    AGENT_SCOPE: {"description": "Report GPU readings for nodes of the GPU pool (node agents)."},
    METRICS_SCOPE: {"description": "Read the GPU pool's Prometheus metrics (a monitoring server's token)."},
}


@dataclass(frozen=True)
class Identity:
    """The caller, as far as this service cares."""

    name: str
    kind: str  # "user" | "service"
    groups: tuple[str, ...] = ()
    scopes: frozenset[str] = field(default_factory=frozenset)
    configured_admin: bool = False  # listed in PoolAuth.admin_users

    @property
    def admin(self) -> bool:
        return self.configured_admin or ADMIN_SCOPE in self.scopes

    @property
    def can_use(self) -> bool:
        return self.admin or USE_SCOPE in self.scopes

    @property
    def agent(self) -> bool:
        return self.admin or AGENT_SCOPE in self.scopes

    @property
    def metrics(self) -> bool:
        return self.admin or METRICS_SCOPE in self.scopes

    def may_act_on(self, owner: str) -> bool:
        return self.admin or (self.can_use and self.kind == "user" and owner == self.name)


def identity_from_model(model: dict, admin_users: set[str] | frozenset[str] = frozenset()) -> Identity:
    kind = model.get("kind", "user")
    return Identity(
        name=model["name"],
        kind=kind,
        groups=tuple(model.get("groups") or ()),
        scopes=frozenset(model.get("scopes") or ()),
        configured_admin=kind == "user" and model["name"] in admin_users,
    )


class PoolAuth(LoggingConfigurable):
    """Authorisation settings, and the hub look-ups the service needs for users other than the caller."""

    admin_users = Set(
        help="""Users who administer the pool even without the custom:gpupool:admin scope. Prefer
        granting the scope through a JupyterHub role (docs/roles-and-scopes.md); this is for small
        setups. Their tokens still need access:services!service=gpupool.""",
    ).tag(config=True)

    metrics_require_auth = Bool(
        True,
        help="""Require a token with the custom:gpupool:metrics (or admin) scope for ``/metrics``,
        as JupyterHub does for its own metrics (read:metrics). Set False to let anyone who can
        reach the service scrape without a token; the metrics name teams, nodes and GPUs, never
        users or workloads.""",
    ).tag(config=True)

    group_cache_seconds = Float(
        60.0,
        help="How long the groups of a user looked up at the hub (admins submitting for a user) are cached.",
    ).tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._groups_cache: dict[str, tuple[float, list[str] | None]] = {}

    def make_hub_auth(self):
        """The ``HubOAuth`` that checks tokens and cookies (configured from the hub's environment)."""
        from jupyterhub.services.auth import HubOAuth

        return HubOAuth(parent=self, cache_max_age=60)

    async def groups_of(self, user: str) -> list[str] | None:
        """A user's JupyterHub groups, asked of the hub with the service's own token; None if no such user."""
        cached = self._groups_cache.get(user)
        if cached and time.monotonic() - cached[0] < self.group_cache_seconds:
            return cached[1]
        api_url = os.environ.get("JUPYTERHUB_API_URL")
        token = os.environ.get("JUPYTERHUB_API_TOKEN")
        if not api_url or not token:
            return []  # not running under a hub (tests of the store, benchmarks): no groups
        from tornado.httpclient import AsyncHTTPClient

        r = await AsyncHTTPClient().fetch(
            f"{api_url.rstrip('/')}/users/{quote(user, safe='')}",
            headers={"Authorization": f"token {token}"},
            raise_error=False,
            request_timeout=10,
        )
        if r.code == 404:
            groups = None
        elif r.code >= 400:
            raise RuntimeError(f"the hub refused to tell the groups of {user!r} ({r.code}); give the gpupool service the read:users:groups scope")
        else:
            groups = list(json.loads(r.body).get("groups") or [])
        self._groups_cache[user] = (time.monotonic(), groups)
        return groups
