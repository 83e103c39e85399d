"""One definition of workload states and kinds, and one UI kit for the lab panel and the admin page.

The states live in hub_ext/states.py; the OpenAPI document, the service and
the generated TypeScript module the UIs import must all say the same. The
admin page runs the kit compiled from the extension's sources, not a copy
that drifts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hub_ext import states
from hub_ext.service.api.openapi import build_document
from hub_ext.service.views import STATES

REPO = Path(__file__).resolve().parents[2]
KIT_SOURCE = REPO / "extensions" / "jupyterlab_gpupool" / "src" / "kit"
KIT_BUILT = REPO / "extensions" / "jupyterlab_gpupool" / "lib" / "kit"
KIT_SERVED = REPO / "hub_ext" / "service" / "pages" / "static" / "kit"


def test_the_generated_typescript_states_are_current():
    committed = (KIT_SOURCE / "states.ts").read_text()
    assert committed == states.typescript(), (
        "extensions/jupyterlab_gpupool/src/kit/states.ts is stale: "
        "python -m hub_ext.states > extensions/jupyterlab_gpupool/src/kit/states.ts"
    )


def test_the_openapi_document_uses_the_one_definition():
    doc = build_document()
    schemas = doc["components"]["schemas"]
    assert schemas["Workload"]["properties"]["state"]["enum"] == list(states.WORKLOAD_STATES)
    assert schemas["Workload"]["properties"]["kind"]["enum"] == list(states.WORKLOAD_KINDS)
    assert schemas["Gpu"]["properties"]["state"]["enum"] == list(states.GPU_STATES)
    [state_param] = [p for p in doc["paths"]["/api/workloads"]["get"]["parameters"] if p["name"] == "state"]
    assert state_param["schema"]["enum"] == list(states.WORKLOAD_STATES)
    assert STATES == states.WORKLOAD_STATES


def test_states_are_not_defined_again_elsewhere():
    """No other module spells the list of states out: one owner."""
    spelled = '"pending", "running", "stopping"'
    offenders = [
        str(p.relative_to(REPO))
        for folder in ("hub_ext", "spawner")
        for p in (REPO / folder).rglob("*.py")
        if p.name != "states.py" and spelled in p.read_text()
    ]
    assert offenders == []


def test_the_admin_page_serves_the_kit_the_panel_is_built_from():
    if not KIT_BUILT.exists():
        pytest.skip("the extension is not built here (lib/kit is missing): ./dev.sh builds it")
    built = {p.name: p.read_text() for p in KIT_BUILT.glob("*.js")}
    served = {p.name: p.read_text() for p in KIT_SERVED.glob("*.js")}
    assert set(built) == set(served), "rebuild: (cd extensions/jupyterlab_gpupool && jlpm build:kit)"
    for name, text in built.items():
        code = "\n".join(line for line in text.splitlines() if not line.startswith("//# sourceMappingURL"))
        assert code.strip() == served[name].strip(), f"static/kit/{name} is stale: (cd extensions/jupyterlab_gpupool && jlpm build:kit)"
