"""Check the service's answers against its own OpenAPI document."""

from __future__ import annotations

import re
from urllib.parse import urlparse

from jsonschema import Draft202012Validator

from hub_ext.client import PoolClient, PoolError


class OpenAPIDocument:
    def __init__(self, doc: dict):
        self.doc = doc
        self._paths = []
        for template in doc["paths"]:
            pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
            self._paths.append((re.compile(pattern), template))

    def operations(self):
        """(path template, method, operation) for every operation."""
        for template, item in self.doc["paths"].items():
            for method, op in item.items():
                yield template, method, op

    def template_for(self, path: str) -> str | None:
        for pattern, template in self._paths:
            if pattern.match(path):
                return template
        return None

    def check_success(self, method: str, path: str, body) -> None:
        """Like ``check``, for a success whose exact 2xx status the client does not tell."""
        template = self.template_for(path)
        assert template is not None, f"{method} {path} is not in the OpenAPI document"
        op = self.doc["paths"][template][method.lower()]
        failures = []
        for status in _success_statuses(op):
            try:
                self.check(method, path, int(status), body)
                return
            except AssertionError as e:
                failures.append(str(e))
        raise AssertionError(" | ".join(failures))

    def check(self, method: str, path: str, status: int, body) -> None:
        """Raise AssertionError unless ``body`` is what the document promises for this answer."""
        template = self.template_for(path)
        assert template is not None, f"{method} {path} is not in the OpenAPI document"
        op = self.doc["paths"][template].get(method.lower())
        assert op is not None, f"{method} {template} is not in the OpenAPI document"
        response = op["responses"].get(str(status))
        assert response is not None, f"{method} {template} answered {status}, which the document does not list"
        schema = response["content"]["application/json"]["schema"]
        full = {**schema, "components": self.doc["components"]}
        errors = sorted(Draft202012Validator(full).iter_errors(body), key=lambda e: list(e.path))
        assert not errors, f"{method} {template} {status}: " + "; ".join(
            f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5]
        )



def _success_statuses(op: dict) -> list[str]:
    return [s for s in op["responses"] if s.startswith("2")]


class CheckedClient(PoolClient):
    """A ``PoolClient`` that checks every answer (successes and refusals) against the document."""

    def __init__(self, url, token, document: OpenAPIDocument):
        super().__init__(url, token)
        self.document = document
        self.checked = 0

    def _call(self, method, path, params=None, body=None, raw=False, headers=None):
        full_path = "/" + path.split("?")[0]
        try:
            result = super()._call(method, path, params=params, body=body, raw=raw, headers=headers)
        except PoolError as e:
            if e.status and e.status < 500 and self.document.template_for(full_path):
                self.document.check(method, full_path, e.status, e.body)
                self.checked += 1
            raise
        if not raw and self.document.template_for(full_path):
            self.document.check_success(method, full_path, result)
            self.checked += 1
        return result


def path_of(url: str) -> str:
    return urlparse(url).path
