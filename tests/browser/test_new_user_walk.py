"""The path a new user takes, on the demo's own configuration started by the README's command.

``python -m demo`` (what ``./dev.sh up`` runs) on free ports with its own state folder; then, in
Debian's chromium: alice logs in, spawns a server with one GPU, runs ``gpupool submit`` in a
JupyterLab terminal, opens the GPU pool panel and submits a job through it; the admin follows the
hub's Services link to the pool's admin page; Ctrl-C stops everything quickly and cleanly.

Each step guards a failure a new user met (issue 11): the OAuth scopes of the demo's service
(1), the terminal's PATH (2), the folder panel jobs run in (3), the service's root page (11),
the shutdown (10).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from hub_ext.client import PoolClient
from tests.browser.helpers import login
from tests.fixtures.waiting import wait_for
from tests.spawner.test_demo_bringup import free_port, start_demo, stop_demo

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
from playwright.sync_api import expect  # noqa: E402

SLOW = 120_000  # ms

# In the lab page: open a terminal through Jupyter's terminals API, type a line, return what it printed.
RUN_IN_TERMINAL = """
async ([base, line, until]) => {
  const xsrf = decodeURIComponent((document.cookie.split('; ').find(c => c.startsWith('_xsrf=')) || '=').split('=')[1]);
  const r = await fetch(base + 'api/terminals', {method: 'POST', headers: {'X-XSRFToken': xsrf}});
  if (!r.ok) { return 'could not open a terminal: ' + r.status; }
  const name = (await r.json()).name;
  const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + base + 'terminals/websocket/' + name);
  let out = '', sent = false;
  return await new Promise(resolve => {
    ws.onmessage = e => {
      const [kind, text] = JSON.parse(e.data);
      if (kind !== 'stdout') { return; }
      out += text;
      if (!sent) { sent = true; ws.send(JSON.stringify(['stdin', line + '\\r'])); }
      if (new RegExp(until).test(out)) { ws.close(); resolve(out); }
    };
    setTimeout(() => { ws.close(); resolve(out); }, 60000);
  });
}
"""

JSON_POST = """
async ([url, body]) => {
  const xsrf = decodeURIComponent((document.cookie.split('; ').find(c => c.startsWith('_xsrf=')) || '=').split('=')[1]);
  const r = await fetch(url, {method: 'POST', headers: {'X-XSRFToken': xsrf, 'Content-Type': 'application/json'},
                              body: JSON.stringify(body)});
  return [r.status, await r.text()];
}
"""

# A browser's call to the pool's API with its hub login (cookie) and the XSRF token the service set.
STATUS_OF = """
async (url) => {
  const xsrf = decodeURIComponent((document.cookie.split('; ').find(c => c.startsWith('_xsrf=')) || '=').split('=')[1]);
  return (await fetch(url, {headers: {'X-XSRFToken': xsrf}})).status;
}
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    state = tmp_path_factory.mktemp("demo")
    proc, banner = start_demo(state, free_port())
    settings = json.loads((state / "settings.json").read_text())
    url = re.search(r"demo is up:\s+(\S+)", banner).group(1)
    hub = SimpleNamespace(
        url=url, user_password=settings["user_password"], admin_password=settings["admin_password"], admins=("admin",),
        state=state, proc=proc, pool=PoolClient(url + "services/gpupool/", settings["spawner_token"]), stopped=None,
    )
    yield hub
    if proc.poll() is None:
        stop_demo(proc)


def finished_job_output(hub, job_id: str) -> str:
    done = wait_for(lambda: (w := hub.pool.workload(job_id))["state"] in ("completed", "failed") and w,
                    timeout=90, what=f"{job_id} to finish", show=lambda: hub.pool.workload(job_id))
    text = hub.pool.logs(job_id)["text"]
    assert done["state"] == "completed", (done["reason"], text[-2000:])
    return text


def test_a_new_user_walks_from_login_to_a_job_and_the_admin_to_the_admin_page(demo, browser, installed_extension):
    hub = demo
    home = str(Path(hub.state, "homes", "alice").resolve())

    # Log in, spawn with one GPU.
    page = login(browser, hub, "alice")
    page.goto(hub.url + "hub/spawn")
    page.check('input[name="gpus"][value="1"]')
    page.click('#spawn_form button[type="submit"]')
    page.wait_for_url("**/user/alice/lab**", timeout=SLOW)
    page.wait_for_selector(".jp-LabShell", timeout=SLOW)
    session = next(w for w in hub.pool.workloads(user="alice")["workloads"] if w["kind"] == "session" and w["state"] == "running")
    assert session["allocation"]["gpus"] == 1

    # The banner's own example: `gpupool submit` in a JupyterLab terminal (bug 2: command not found).
    typed = page.evaluate(RUN_IN_TERMINAL, ["/user/alice/", "gpupool submit --gpus 1 -- python -c 'import os; print(\"cwd=\" + os.getcwd())'",
                                            r"submitted w-\d+|not found|gpupool: "])
    submitted = re.search(r"submitted (w-\d+)", typed)
    assert submitted, typed[-1500:]
    assert f"cwd={home}" in finished_job_output(hub, submitted.group(1))

    # The GPU pool panel opens; a job submitted through it runs in the user's folder (bug 3).
    page.click('.lm-TabBar-tab[data-id="gpupool-panel"]')
    expect(page.locator("#gpupool-panel")).to_be_visible(timeout=SLOW)
    status, text = page.evaluate(JSON_POST, ["/user/alice/gpupool/api/workloads",
                                             {"kind": "job", "gpus": 1, "command": ["python", "-c", "import os; print('cwd=' + os.getcwd())"]}])
    assert status in (200, 201), text
    assert f"cwd={home}" in finished_job_output(hub, json.loads(text)["id"])

    # The hub's Services link is a page for people, and the browser may call the API (bugs 11 and 1).
    page.goto(hub.url + "services/gpupool/")
    expect(page.locator("#gpupool-root")).to_be_visible(timeout=SLOW)
    assert page.evaluate(STATUS_OF, "/services/gpupool/api/me") == 200
    page.context.close()

    # The admin goes the same way and lands on the admin page, allowed (bug 1: 403).
    admin = login(browser, hub, "admin")
    admin.goto(hub.url + "services/gpupool/")
    admin.wait_for_url("**/services/gpupool/admin**", timeout=SLOW)
    assert admin.locator("#gpupool-forbidden").count() == 0, admin.content()[:500]
    assert admin.evaluate(STATUS_OF, "/services/gpupool/api/teams") == 200
    admin.context.close()

    # Ctrl-C: quick, and clean (bug 10: 62-70 s, a traceback, "could not release" for every server).
    started = time.monotonic()
    out = stop_demo(hub.proc)
    took = time.monotonic() - started
    log = (Path(hub.state) / "jupyterhub.log").read_text(errors="replace")
    assert hub.proc.returncode == 0 and "[demo] stopped" in out, out
    assert took < 40, f"Ctrl-C took {took:.0f} s:\n{out}"
    assert "could not release" not in log and "not released now" not in log, log[-3000:]
    assert "Traceback" not in log, log[log.index("Traceback") - 200:][:3000]
    # The session was given back while the pool service still ran.
    assert "released " + session["id"] in log
