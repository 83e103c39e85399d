"""Fixtures for the service tests: clients that check every answer against the OpenAPI document."""

from __future__ import annotations

import time

import pytest
import requests

from .openapi_check import CheckedClient, OpenAPIDocument


def wait_for(predicate, timeout: float = 30, interval: float = 0.2, what: str = "condition", show=None):
    """Poll ``predicate`` until it returns something truthy; return that (``show()`` explains a timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f": {show()}" if show else ""))
        time.sleep(interval)


@pytest.fixture(scope="module")
def openapi(pool_hub) -> OpenAPIDocument:
    r = requests.get(pool_hub.service_url + "api/openapi.json", timeout=10)
    r.raise_for_status()
    return OpenAPIDocument(r.json())


@pytest.fixture(scope="module")
def as_user(pool_hub, openapi):
    """``as_user("alice")``: a checked client with a token of that user (or "spawner"/"agent")."""
    clients = {}

    def make(name: str) -> CheckedClient:
        if name not in clients:
            token = {"spawner": pool_hub.spawner_token, "agent": pool_hub.agent_token}.get(name) or pool_hub.token(name)
            clients[name] = CheckedClient(pool_hub.service_url, token, openapi)
        return clients[name]

    return make


@pytest.fixture
def cleanup(as_user):
    """Workload ids appended here are cancelled after the test (by an admin)."""
    ids: list[str] = []
    yield ids
    admin = as_user("ada")
    for wid in ids:
        try:
            admin.cancel(wid)
        except Exception:
            pass
