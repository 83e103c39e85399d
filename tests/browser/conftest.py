"""Browser tests: Debian's chromium, driven by Playwright, against a real hub.

The hub (``tests.fixtures.hub.start_hub``) runs the gpupool service on a
simulated pool and the local GPU spawner; users' JupyterLab servers load the
real ``jupyterlab_gpupool`` extension as installed in this environment.

Screenshots go to the test's tmp folder; with ``GPUPOOL_UPDATE_SCREENSHOTS=1``
they also replace the ones in ``docs/screenshots/``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.browser.helpers import login
from tests.fixtures.hub import REPO, start_hub

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
EXTENSION = REPO / "extensions" / "jupyterlab_gpupool"
DOC_SCREENSHOTS = REPO / "docs" / "screenshots"

# The spawner and the extension, wired as a deployment would (docs/lab-panel.md, docs/admin-page.md).
LAB_HUB_CONFIG = """
import os
from pathlib import Path
import hub_ext.service.pages as gpupool_pages

c.JupyterHub.spawner_class = "spawner.local.SimpleGpuLocalProcessSpawner"
c.PoolAllocationMixin.pool_url = POOL_URL
c.PoolAllocationMixin.pool_token = SPAWNER_TOKEN
c.SimpleLocalProcessSpawner.home_dir_template = STATE_DIR + "/homes/{username}"
c.Spawner.default_url = "/lab"
c.Spawner.cmd = [str(Path(PYTHON).parent / "jupyterhub-singleuser")]
# The servers run as this (test) account; JupyterLab refuses root unless told.
c.Spawner.args = ["--allow-root"] if os.getuid() == 0 else []
c.Spawner.environment = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": REPO}
c.Spawner.http_timeout = 120
c.Spawner.start_timeout = 180
c.Spawner.server_token_scopes = [
    "users:activity!user",
    "access:servers!server",
    "custom:gpupool:use",
    "access:services!service=gpupool",
]
c.JupyterHub.template_paths = [gpupool_pages.HUB_TEMPLATES]
"""

# One DGX-1-like node, so a job's GPUs never straddle nodes and the scenario is the same every run.
LAB_POOL = [{"name": "dgx1", "gpus": 8, "model": "V100-SXM2-32GB", "memory_mib": 32768}]
LAB_TEAMS = {"vision": {"quota": 4, "over_quota_weight": 1}, "nlp": {"quota": 4, "over_quota_weight": 1}}

# Idle sessions are warned after a few seconds (and reclaimed only an hour later), so the
# panel's warning can be seen within a test.
LAB_SERVICE_CONFIG = """
c.IdleReclaim.idle_limit_seconds = 3
c.IdleReclaim.grace_seconds = 3600
# A preempted session's notice lasts long enough to be seen in the panel (test_lab_panel's last test).
c.Preemption.grace_seconds = 900
"""


def _labextension_build_id(folder: Path) -> str | None:
    try:
        return json.loads((folder / "package.json").read_text())["jupyterlab"]["_build"]["load"]
    except (OSError, KeyError, ValueError):
        return None


def _installed_labextension() -> Path | None:
    from jupyter_core.paths import jupyter_path

    for base in jupyter_path("labextensions"):
        candidate = Path(base) / "jupyterlab-gpupool"
        if (candidate / "package.json").exists():
            return candidate
    return None


@pytest.fixture(scope="session")
def installed_extension() -> Path:
    """The extension JupyterLab will load, checked to be the build of the current sources."""
    import importlib.util

    if importlib.util.find_spec("jupyterlab_gpupool") is None:
        pytest.fail(
            "jupyterlab_gpupool is not installed: .venv/bin/pip install extensions/jupyterlab_gpupool "
            "(see docs/lab-panel.md#building)"
        )
    installed = _installed_labextension()
    if installed is None:
        pytest.fail("the jupyterlab-gpupool labextension is not installed: .venv/bin/pip install extensions/jupyterlab_gpupool")
    built = EXTENSION / "jupyterlab_gpupool" / "labextension"
    if built.exists():
        sources = [p for d in ("src", "style") for p in (EXTENSION / d).rglob("*") if p.is_file()]
        newest_source = max(p.stat().st_mtime for p in sources)
        if (built / "package.json").stat().st_mtime < newest_source:
            pytest.fail(
                "the labextension is older than its sources: rebuild it with "
                "`(cd extensions/jupyterlab_gpupool && jlpm build:prod)` or reinstall the package"
            )
        if _labextension_build_id(installed) != _labextension_build_id(built):
            pytest.fail(
                f"the installed labextension ({installed}) is not the current build: "
                ".venv/bin/pip install extensions/jupyterlab_gpupool, or link it with "
                "`jupyter labextension develop --overwrite extensions/jupyterlab_gpupool`"
            )
    return installed


# Module scope, not session: Playwright's sync API keeps an event loop running in this
# thread while it is open, which would break every later test that runs its own loop.
@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def lab_hub(tmp_path_factory, installed_extension):
    """A hub whose users get JupyterLab servers with GPUs from the pool (and the panel)."""
    if not (Path(sys.executable).parent / "jupyterhub-singleuser").exists():
        pytest.skip("jupyterhub-singleuser is not installed beside this Python")
    hub = start_hub(
        tmp_path_factory.mktemp("labhub"),
        extra_config=LAB_HUB_CONFIG,
        service_config=LAB_SERVICE_CONFIG,
        pool=LAB_POOL,
        teams=LAB_TEAMS,
        timeout=240,  # the machine may be busy with other test runs
    )
    yield hub
    # Stop users' servers through the hub first, so no JupyterLab outlives the test.
    for user in hub.users:
        try:
            hub.hub_api("DELETE", f"/users/{user}/server")
        except Exception:
            pass
    hub.stop()


@pytest.fixture
def page_for(browser):
    """``page_for(hub, user)``: a page logged into the hub as ``user`` (closed after the test)."""
    pages = []

    def make(hub, user: str):
        page = login(browser, hub, user)
        pages.append(page)
        return page

    yield make
    for page in pages:
        page.context.close()


@pytest.fixture
def screenshot(tmp_path):
    """``screenshot(page_or_locator, name, full_page=False)``: saved in tmp, and into docs/ when asked to update them."""

    def take(target, name: str, full_page: bool = False) -> Path:
        path = tmp_path / f"{name}.png"
        if full_page:
            target.screenshot(path=str(path), full_page=True)
        else:
            target.screenshot(path=str(path))
        if os.environ.get("GPUPOOL_UPDATE_SCREENSHOTS") == "1":
            DOC_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOC_SCREENSHOTS / f"{name}.png")
        return path

    return take
