"""Property-based fuzzing of the served OpenAPI document (Schemathesis), as a user and as an admin.

For every operation of ``api/openapi.json``, Schemathesis generates requests
from the document (valid ones, and invalid ones) and checks each answer: no
5xx, no status code the document does not list, no body outside the
document's schema, the documented content type, and invalid input refused
with a 4xx. Bounded by ``EXAMPLES`` per operation and mode, so a run takes
about a minute; ``GPUPOOL_FUZZ_EXAMPLES`` raises it for a longer hunt.

Jobs the fuzzer submits never run anything: the service's job wrapper is
``true``, so a generated command is recorded but not executed.
"""

from __future__ import annotations

import os
import shutil

import pytest
import requests

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (pip install -e '.[test]')")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fixtures.hub import start_hub  # noqa: E402

EXAMPLES = int(os.environ.get("GPUPOOL_FUZZ_EXAMPLES", "8"))
# "true" ignores its arguments: the wrapper and the generated command never run.
NO_JOBS = f"c.LocalRunner.python = {shutil.which('true') or '/bin/true'!r}\n"

POSITIVE_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
NEGATIVE_CHECKS = POSITIVE_CHECKS + [negative_data_rejection]


def fuzz(hub, token: str, modes=(GenerationMode.POSITIVE, GenerationMode.NEGATIVE), calls: list | None = None,
         examples: int = EXAMPLES) -> list[str]:
    """Run every operation of the served document; return the failures, one line each (``calls`` counts requests)."""
    doc = requests.get(hub.service_url + "api/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(doc)
    base_url = hub.service_url.rstrip("/")
    headers = {"Authorization": f"token {token}"}
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in modes:
            checks = NEGATIVE_CHECKS if mode == GenerationMode.NEGATIVE else POSITIVE_CHECKS

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def run(case):
                # The document's own Authorization is a header parameter for the fuzzer; keep ours.
                response = case.call_and_validate(base_url=base_url, headers=headers, checks=checks, timeout=60)
                if calls is not None:
                    calls.append((operation.label, response.status_code))

            try:
                run()
            except (Exception, BaseExceptionGroup) as e:  # one failure per operation and mode is enough to act on
                first = str(e).strip().splitlines()
                failures.append(f"{operation.label} [{mode.value}]: " + " | ".join(line.strip() for line in first[:14] if line.strip()))
    return failures


@pytest.fixture(params=["sqlite", "postgresql"])
def fuzz_hub(request, tmp_path):
    db_url = None if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    hub = start_hub(tmp_path / "hub", service_config=NO_JOBS, db_url=db_url)
    yield hub
    hub.stop()


def test_fuzzing_the_document_finds_no_server_error_and_nothing_undocumented(fuzz_hub):
    hub = fuzz_hub
    modes, examples = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE), EXAMPLES
    if "postgresql" in hub.service_config_path.read_text():
        # The smaller variant: valid requests only (what reaches the database), fewer of them.
        modes, examples = (GenerationMode.POSITIVE,), max(1, EXAMPLES // 2)
    calls: list = []
    failures = fuzz(hub, hub.token("alice"), modes, calls, examples) + fuzz(hub, hub.token("ada"), modes, calls, examples)
    assert not failures, "\n".join(failures)
    operations = {label for label, _ in calls}
    assert len(operations) >= 14, f"the fuzzer reached only {sorted(operations)}"
    assert any(status in (200, 201) for label, status in calls if label == "POST /api/workloads"), "no submission was accepted"
    # The service is still whole after the fuzzing.
    assert requests.get(hub.service_url + "api/pool", headers={"Authorization": f"token {hub.token('ada')}"}, timeout=10).ok
