"""How quickly JupyterHub restarts the pool service after a crash (for ``jupyterhub_config.py``).

JupyterHub notices that a managed service died when it next polls the
service's process: every 30 s by default, so after a crash the API is gone
for up to half a minute (10-41 s measured, median 20 s), most of it waiting
for that poll. The poll interval of managed services is not configurable in
JupyterHub, so this swaps in the same service spawner with a shorter
interval. Call it from the hub's configuration, before the hub starts::

    from hub_ext.service.hub_restart import restart_managed_services_within
    restart_managed_services_within(1)

A check costs one ``waitpid`` per managed service per interval. A pool
service run by Kubernetes (the Helm chart) is restarted by its Deployment
instead and needs none of this. See docs/service.md, "Restarts".
"""

from __future__ import annotations


def restart_managed_services_within(seconds: float = 1.0) -> None:
    """Make the hub check its managed services' processes every ``seconds`` (and restart a dead one)."""
    import jupyterhub.services.service as services
    from traitlets import Float

    base = getattr(services._ServiceSpawner, "_gpupool_original", services._ServiceSpawner)

    class QuickPollServiceSpawner(base):
        poll_interval = Float(float(seconds))
        poll_jitter = Float(0.0)
        _gpupool_original = base

    services._ServiceSpawner = QuickPollServiceSpawner
