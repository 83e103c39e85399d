"""Jobs submitted from the JupyterLab panel run in the user's folder (issue 11, bug 3)."""

from __future__ import annotations

import os

from jupyterlab_gpupool.handlers import job_in_server_folder


def test_a_panel_job_without_a_folder_runs_in_the_servers_root(tmp_path):
    spec = job_in_server_folder({"command": ["python", "examples/train.py"], "gpus": 1}, str(tmp_path))
    assert spec["workdir"] == str(tmp_path)


def test_a_relative_folder_is_taken_from_the_servers_root_and_an_absolute_one_kept(tmp_path):
    assert job_in_server_folder({"workdir": "runs/a"}, str(tmp_path))["workdir"] == os.path.join(str(tmp_path), "runs", "a")
    assert job_in_server_folder({"workdir": "/data/x"}, str(tmp_path))["workdir"] == "/data/x"
