"""JupyterLab panel for jupyterhub-gpupool, and the server extension it talks through.

The labextension (panel, status bar item) is prebuilt into
``labextension/`` and shipped in the wheel under
``share/jupyter/labextensions/jupyterlab-gpupool``. The server extension
forwards the panel's calls to the pool service with this server's own
JupyterHub token, so the browser needs no login of its own.
"""

__version__ = "0.1.0"


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "jupyterlab-gpupool"}]


def _jupyter_server_extension_points():
    return [{"module": "jupyterlab_gpupool"}]


def _load_jupyter_server_extension(serverapp):
    from .handlers import setup_handlers

    setup_handlers(serverapp)
