"""Where the pool service is, and how this server proves who it is to it."""

from __future__ import annotations

import os

from traitlets import Float, Unicode, default
from traitlets.config import LoggingConfigurable


class GpuPoolLab(LoggingConfigurable):
    """Settings of the lab server extension (``c.GpuPoolLab.*`` in jupyter_server_config.py)."""

    pool_url = Unicode(
        help="""Base URL of the pool service, e.g. http://127.0.0.1:8081/services/gpupool/.
        Default: $GPUPOOL_URL, which the gpupool spawners set for every server they start.""",
    ).tag(config=True)

    @default("pool_url")
    def _pool_url_default(self):
        return os.environ.get("GPUPOOL_URL", "")

    api_token = Unicode(
        help="""Token sent to the pool service. Default: $JUPYTERHUB_API_TOKEN, this server's own
        JupyterHub token, so the service acts for the user who owns the server. The hub must grant
        server tokens the gpupool scopes (see docs/lab-panel.md).""",
    ).tag(config=True)

    @default("api_token")
    def _api_token_default(self):
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    session_workload_id = Unicode(
        help="""The pool workload this server runs as, shown as "this server" in the panel and
        measured by the status bar item. Default: $GPUPOOL_WORKLOAD_ID, set by the gpupool spawners.""",
    ).tag(config=True)

    @default("session_workload_id")
    def _session_workload_id_default(self):
        return os.environ.get("GPUPOOL_WORKLOAD_ID", "")

    request_timeout = Float(
        20.0,
        help="Seconds to wait for the pool service before telling the user it is not answering.",
    ).tag(config=True)
