"""Fixtures for the service tests: clients that check every answer against the OpenAPI document."""

from __future__ import annotations

import pytest
import requests

from tests.fixtures.waiting import wait_for  # noqa: F401 - the service tests import it from here

from .openapi_check import CheckedClient, OpenAPIDocument


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
