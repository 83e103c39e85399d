"""The service process: stops promptly on SIGTERM, serves its OpenAPI document, lists its options."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import requests
from openapi_spec_validator import validate

from .conftest import wait_for


def test_sigterm_stops_the_service_promptly(pool_hub):
    pid = pool_hub.service_pid()
    os.kill(pid, signal.SIGTERM)
    started = time.monotonic()
    wait_for(lambda: not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z",
             timeout=10, what="the service to exit after SIGTERM")
    assert time.monotonic() - started < 10
    pool_hub.wait_for_service(not_pid=pid)  # the hub starts it again


def test_the_openapi_document_is_valid(pool_hub):
    doc = requests.get(pool_hub.service_url + "api/openapi.json", timeout=10).json()
    validate(doc)
    assert doc["servers"] == [{"url": "/services/gpupool/"}]
    through_proxy = requests.get(pool_hub.pool_url + "api/openapi.json", timeout=10).json()
    assert through_proxy == doc


def test_gpupool_service_help_lists_every_option():
    out = subprocess.run([sys.executable, "-m", "hub_ext.cli.main", "service", "--help-all"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for option in ("--Inventory.nodes", "--Teams.group_teams", "--SchedulingLoop.tick_seconds", "--JobSupervisor.grace_seconds",
                   "--PoolAuth.admin_users", "--GpuPoolService.db_url", "--LocalRunner.log_dir"):
        assert option in out.stdout


def test_out_of_range_preemption_and_decay_settings_are_refused_at_start_up(tmp_path):
    cases = [
        ("Preemption.grace_seconds=0", "Preemption.grace_seconds must be more than 0 seconds"),
        ("Preemption.min_runtime_shrink_seconds=9999999999", "must be at most a week"),
        ("UsageDecay.half_life_seconds=0", "UsageDecay.half_life_seconds must be between 60 s (a minute)"),
    ]
    for i, (setting, message) in enumerate(cases):
        out = subprocess.run(
            [sys.executable, "-m", "hub_ext.cli.main", "service", "--state-dir", str(tmp_path / str(i)), "--set", setting],
            capture_output=True, text=True, timeout=60,
        )
        assert out.returncode != 0, f"{setting} was accepted"
        assert message in out.stderr, out.stderr[-2000:]
        assert "Traceback" not in out.stderr
